"""A run that has nothing to say still shows life: the event log's heartbeat thread writes a `heartbeat` after
each silence of `heartbeat_s`, whoever owns the log (the continuous event sink, the discrete scheduler)."""
from __future__ import annotations

import time

from nas_core.discrete import SearchJob, run_search
from nas_core.events import EventKind, EventLog
from nas_core.search.event_schema import validate_events
from tests.search.conftest import read_log


def test_a_silent_log_beats_and_a_busy_one_does_not(tmp_path):
    with EventLog(tmp_path / "events.jsonl", heartbeat_s=0.3) as log:
        for _ in range(10):  # busy: an event every 0.05 s leaves no silence to fill
            log.append(EventKind.log, {"message": "busy"})
            time.sleep(0.05)
        time.sleep(1.25)  # silent: about four beats
    events = read_log(tmp_path / "events.jsonl")
    beats = [e for e in events if e["kind"] == "heartbeat"]
    assert [e["kind"] for e in events[:10]] == ["log"] * 10
    assert 2 <= len(beats) <= 5
    validate_events(events)


def test_the_discrete_scheduler_beats_through_a_long_trial(tmp_path, monkeypatch):
    monkeypatch.setattr("nas_core.discrete._scheduler.HEARTBEAT_S", 0.5)
    job = SearchJob(workdir=str(tmp_path), method="random", categorical=[3, 3], trials=1,
                    objective_params={"sleep_s": 2.5})
    run_search(job, workers=1)
    events = read_log(tmp_path / "events.jsonl")
    validate_events(events)
    cand = next(i for i, e in enumerate(events) if e["kind"] == "candidate")
    assert sum(e["kind"] == "heartbeat" for e in events[:cand]) >= 2, "no heartbeat while the trial ran"
