"""The JSON Schema of the event log (docs/events.md): the envelope of every event and the payloads a search
writes, so a test, the backend or a user can check a run's event log (`RunDir.events`) line by line."""
from __future__ import annotations

from typing import Any, Iterable

from nas_core.events import EVENT_KINDS, Event, StatusState
from nas_core.rundir import STAGES

_NUM = {"type": "number"}
_NUM_OR_NULL = {"type": ["number", "null"]}
_INT = {"type": "integer", "minimum": 0}
_STAGE = {"enum": [*STAGES, None]}

_CELL_ALPHA = {
    "type": "object",
    "required": ["alpha", "beta", "edges", "ops", "entropy"],
    "properties": {
        "alpha": {"type": "array", "minItems": 1, "items": {"type": "array", "minItems": 1, "items": _NUM}},
        "beta": {"oneOf": [{"type": "null"}, {"type": "array", "items": _NUM}]},
        "edges": {"type": "array", "items": {"type": "string"}},
        "ops": {"type": "array", "items": {"type": "string"}},
        "entropy": {"type": "array", "items": {"type": "number", "minimum": 0}},
    },
}

_GENOTYPE = {
    "type": "object",
    "required": ["cells"],
    "properties": {"cells": {"type": "object", "minProperties": 1, "additionalProperties": {
        "type": "object", "required": ["nodes", "concat"],
        "properties": {
            "nodes": {"type": "array", "items": {"type": "array", "minItems": 1, "items": {
                "type": "array", "prefixItems": [{"type": "string"}, _INT], "minItems": 2, "maxItems": 2}}},
            "concat": {"type": "array", "minItems": 1, "items": _INT},
        }}}},
}

_PAYLOADS: dict[str, dict[str, Any]] = {
    "alpha": {
        "type": "object", "required": ["epoch", "step", "cells", "param_free_share"],
        "properties": {
            "epoch": _INT, "step": _INT,
            "cells": {"type": "object", "minProperties": 1, "additionalProperties": _CELL_ALPHA},
            "param_free_share": {"type": "object", "additionalProperties": {"type": "number", "minimum": 0, "maximum": 1}},
        },
    },
    "metric": {
        "type": "object", "required": ["epoch", "train_loss"],
        "properties": {"epoch": _INT, "stage": _STAGE, "train_loss": _NUM_OR_NULL, "val_loss": _NUM_OR_NULL,
                       "val_iou": _NUM_OR_NULL},
        # The search's per-epoch metric carries its validation numbers; the retrain's carries the training loss.
        "if": {"properties": {"stage": {"const": "search"}}, "required": ["stage"]},
        "then": {"required": ["epoch", "step", "train_loss", "val_loss", "val_iou"]},
    },
    "genotype": {
        "type": "object", "required": ["epoch", "genotype"],
        "properties": {"epoch": {"type": "integer", "minimum": -1}, "stage": _STAGE, "genotype": _GENOTYPE},
    },
    "progress": {
        "type": "object", "required": ["stage", "epoch", "epochs", "fraction", "eta_s"],
        "properties": {"stage": {"type": "string"}, "epoch": _INT, "epochs": {"type": "integer", "minimum": 1},
                       "fraction": {"type": "number", "minimum": 0, "maximum": 1},
                       "eta_s": {"type": ["number", "null"], "minimum": 0}},
    },
    "status": {
        "type": "object", "required": ["state"],
        "properties": {"state": {"enum": [str(s) for s in StatusState]}, "stage": _STAGE,
                       "error": {"type": "string"}},
        "if": {"properties": {"state": {"const": "failed"}}},
        "then": {"required": ["state", "error"]},
    },
    "heartbeat": {"type": "object"},
    "evaluation": {"type": "object"},
    "log": {
        "type": "object", "required": ["message"],
        # `topic` marks a line about one epoch (start, epoch, early_stop): history, written once across resumes.
        "properties": {"message": {"type": "string"}, "stage": _STAGE, "level": {"enum": ["info", "warning"]},
                       "topic": {"type": "string"}, "epoch": _INT},
    },
    "candidate": {"type": "object"},
    "sensitivity": {
        "type": "object", "required": ["file", "network", "first", "order", "blocks", "reference_iou", "steps"],
        "properties": {
            "file": {"type": "string"}, "network": {"type": "string"}, "first": {"type": "string"},
            "order": {"type": "array", "minItems": 1, "items": {"type": "string"}},
            "reference_iou": _NUM, "tuned_reference_iou": _NUM, "steps": _INT, "candidates": _INT,
            "blocks": {"type": "array", "minItems": 1, "items": {
                "type": "object", "required": ["name", "role", "rank", "score", "gain", "drop", "taylor_share"],
                "properties": {"name": {"type": "string"}, "role": {"enum": ["normal", "down", "up"]},
                               "rank": {"type": "integer", "minimum": 1},
                               "score": {"type": "number", "minimum": 0, "maximum": 1}, "gain": _NUM, "drop": _NUM,
                               "taylor_share": {"type": "number", "minimum": 0, "maximum": 1},
                               "ablation": {"enum": ["identity", "reinitialised"]}}}},
        },
    },
}

def _envelope() -> dict[str, Any]:
    """The envelope from the pydantic model `nas_core.events.Event`, inlined (no $defs) for readers of the doc."""
    schema = Event.model_json_schema()
    props = {k: {kk: vv for kk, vv in v.items() if kk not in ("title", "$ref")} for k, v in schema["properties"].items()}
    props["kind"] = {"enum": [str(k) for k in EVENT_KINDS], "description": "nas_core.events.EventKind"}
    return {"required": sorted(schema["required"] + ["payload"], key=list(props).index), "properties": props}


EVENT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "nasforge event",
    "type": "object",
    **_envelope(),
    "allOf": [
        {"if": {"properties": {"kind": {"const": kind}}, "required": ["kind"]},
         "then": {"properties": {"payload": schema}}}
        for kind, schema in _PAYLOADS.items()
    ],
}


def validate_events(events: Iterable[dict[str, Any]]) -> int:
    """Check each event against EVENT_SCHEMA and that seq runs 1, 2, 3...; returns the count.

    Raises ValueError naming the first bad event's seq and what is wrong with it.
    """
    # jsonschema_rs comes with schemathesis (the dev extra); a search run itself never needs it.
    import jsonschema_rs

    validator = jsonschema_rs.Draft202012Validator(EVENT_SCHEMA)
    n = 0
    for event in events:
        n += 1
        errors = list(validator.iter_errors(event))
        if errors:
            e = errors[0]
            where = "/".join(str(p) for p in e.instance_path) or "(event)"
            raise ValueError(f"event seq {event.get('seq')} ({event.get('kind')}): {where}: {e.message}")
        if event["seq"] != n:
            raise ValueError(f"event {n} of the log has seq {event['seq']}: a gap or a repeat")
    return n
