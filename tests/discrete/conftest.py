"""Helpers shared by the discrete-search tests."""
from __future__ import annotations

import json
from pathlib import Path

from nas_core.events import read_events


def candidate_events(workdir: Path) -> list[dict]:
    return [e["payload"] for _, e in read_events(Path(workdir) / "events.jsonl") if e["kind"] == "candidate"]


def finished_trials(workdir: Path) -> dict[int, dict]:
    data = json.loads((Path(workdir) / "checkpoint.json").read_text())
    return {int(k): v for k, v in data["finished"]}


def starts(state_dir: Path) -> list[tuple[int, int, int]]:
    """(trial, attempt, pid) of every execution the synthetic objective began, from its marker files."""
    out = []
    for p in Path(state_dir).glob("start-*"):
        _, trial, attempt, pid = p.name.split("-")
        out.append((int(trial), int(attempt), int(pid)))
    return sorted(out)
