"""The search's event helpers: entropy, parameter-free share, the heartbeat, and history written once across a resume."""
from __future__ import annotations

import math
import time

import pytest
import torch

from nas_core.search.event_schema import validate_events
from nas_core.search.reporting import EventSink, entropy, param_free_share
from tests.search.conftest import read_log


def test_entropy_is_log_n_when_undecided_and_zero_when_decided():
    h = entropy(torch.tensor([[0.25, 0.25, 0.25, 0.25], [1.0, 0.0, 0.0, 0.0], [0.5, 0.5, 0.0, 0.0]]))
    assert h[0] == pytest.approx(math.log(4)) and h[1] == pytest.approx(0.0) and h[2] == pytest.approx(math.log(2))


def test_param_free_share_counts_skips_pools_and_none():
    g = {"cells": {"normal": {"nodes": [[["skip_connect", 0], ["sep_conv_3x3", 1]], [["max_pool_3x3", 0], ["avg_pool_3x3", 2]]],
                              "concat": [2, 3]},
                   "up": {"nodes": [[["conv_3x3", 0], ["dil_conv_3x3", 1]]], "concat": [2]}}}
    assert param_free_share(g) == {"normal": 0.75, "up": 0.0}


def test_heartbeat_fills_silence(tmp_path):
    with EventSink(tmp_path / "e.jsonl", heartbeat_s=0.2) as sink:
        sink.emit("log", {"message": "start"})
        time.sleep(1.5)
    log = read_log(tmp_path / "e.jsonl")
    beats = [e for e in log if e["kind"] == "heartbeat"]
    assert 3 <= len(beats) <= 8
    gaps = [b["time"] - a["time"] for a, b in zip(log, log[1:])]
    assert max(gaps) < 0.2 + 1.0  # never silent much longer than the beat (the thread wakes at least once a second)
    validate_events(log)


def test_history_after_the_checkpoint_is_written_once(tmp_path):
    path = tmp_path / "e.jsonl"
    alpha = lambda epoch, step: {"epoch": epoch, "step": step, "param_free_share": {},
                                 "cells": {"normal": {"alpha": [[1.0]], "beta": None, "edges": ["0->2"], "ops": ["skip_connect"], "entropy": [0.0]}}}
    with EventSink(path, heartbeat_s=0) as sink:
        sink.emit("alpha", alpha(0, 1))
        checkpoint_seq = sink.seq
        sink.emit("alpha", alpha(0, 2))  # written after the checkpoint, then the process dies
        sink.emit("progress", {"stage": "search", "epoch": 0, "epochs": 2, "fraction": 0.7, "eta_s": None, "step": 2})
    with EventSink(path, after_seq=checkpoint_seq, heartbeat_s=0) as sink:
        assert sink.emit("alpha", alpha(0, 2)) is None      # repeated work: already in the log
        assert sink.emit("alpha", alpha(0, 3)) == 4          # new work continues the sequence
        assert sink.emit("status", {"state": "running", "stage": "search"}) == 5  # not history: always written
    log = read_log(path)
    assert [e["seq"] for e in log] == [1, 2, 3, 4, 5]
    assert [(e["payload"].get("step")) for e in log if e["kind"] == "alpha"] == [1, 2, 3]
    validate_events(log)


def test_emit_refuses_nan_before_writing(tmp_path):
    with EventSink(tmp_path / "e.jsonl", heartbeat_s=0) as sink:
        with pytest.raises(ValueError):
            sink.emit("metric", {"epoch": 0, "train_loss": float("nan")})
        assert sink.seq == 0
