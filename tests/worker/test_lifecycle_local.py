"""The run state machine with the local launcher, driven in this process (launch, reconcile passes, cancel)."""
from __future__ import annotations

import json
import os
import signal
import sys
import time

import pytest

from tests.worker.conftest import drive as _drive, file_seqs, get_run, make_run, published_seqs, stored_seqs, wait_for
from worker import control
from worker.reconcile import reconcile


def test_launch_watch_succeed_with_every_event_stored_once(worker_home, monkeypatch):
    # The real search, at tiny size (one trial of a random search on synthetic tiles, no retrain): what the watcher
    # stores is what a search writes, not what a stand-in does. The tests below keep the stand-in (fake_search.py).
    from tests._home import clear_settings_caches
    from tests.baseline.conftest import tiny_experiment

    monkeypatch.setenv("NASFORGE_SEARCH_COMMAND", json.dumps([os.path.join(os.path.dirname(sys.executable), "nasforge")]))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    clear_settings_caches()
    cfg = tiny_experiment("random", trials=1)
    run_id = make_run(name="real-tiny", space=cfg["space"], data={**cfg["data"], "num_tiles": 8},
                      search={"method": "random", "trials": 1, "trial_epochs": 1},
                      retrain={"enabled": False}, baseline={"random": False})
    try:
        assert control.launch(run_id) == "submitted"
        assert control.launch(run_id) == "submitted", "a repeated launch task changes nothing"
        first = get_run(run_id)
        assert first.pid and first.job_id is None
        run = _drive(run_id, {"succeeded", "failed"}, timeout=120)
    finally:
        monkeypatch.undo()
        clear_settings_caches()
    assert run.status == "succeeded", run.status_reason
    assert run.pid == first.pid, "the repeated launch did not start a second process"
    seqs = file_seqs(run.run_dir)
    assert stored_seqs(run_id) == seqs == list(range(1, len(seqs) + 1)) and len(seqs) >= 5
    kinds = [json.loads(line)["kind"] for line in open(os.path.join(run.run_dir, "events.jsonl"))]
    assert "candidate" in kinds and kinds[-1] == "status"
    assert run.log_offset == os.path.getsize(os.path.join(run.run_dir, "events.jsonl"))
    assert run.progress == 1.0 and run.last_seq == seqs[-1]
    # The Redis stream for SSE got each event once, in order.
    assert published_seqs(worker_home["env"]["REDIS_URL"], run_id) == seqs


def test_a_failing_search_ends_failed_with_its_reason(worker_home):
    run_id = make_run(epochs=1, fake={"step_s": 0.01, "exit": 4})
    control.launch(run_id)
    run = _drive(run_id, {"succeeded", "failed"})
    assert run.status == "failed"
    assert "fake failure with exit code 4" in run.status_reason and "failing on purpose" in run.status_reason


def test_bad_resources_fail_the_run_with_the_field_named(worker_home):
    run_id = make_run(epochs=1)
    from backend.core.db import session_scope
    from backend.models import Run

    with session_scope() as s:
        row = s.get(Run, run_id)
        row.resources = {**row.resources, "slurm": {"partition": "; rm -rf /"}}
        s.add(row)
        s.commit()
    control.launch(run_id)
    run = get_run(run_id)
    assert run.status == "failed" and "slurm.partition" in run.status_reason and run.pid is None


def test_run_dir_outside_the_runs_root_is_refused(worker_home, tmp_path):
    run_id = make_run(epochs=1)
    from backend.core.db import session_scope
    from backend.models import Run

    with session_scope() as s:
        row = s.get(Run, run_id)
        row.run_dir = str(tmp_path / "elsewhere")
        s.add(row)
        s.commit()
    control.launch(run_id)
    run = get_run(run_id)
    assert run.status == "failed" and "outside the runs root" in run.status_reason
    assert not (tmp_path / "elsewhere").exists()


def test_an_init_from_outside_the_roots_is_refused_at_launch(worker_home, tmp_path):
    """The API confines a partial search's space.init_from; the worker checks it again before starting, as it does
    data.path (the roots may have narrowed since, or the stored config was changed behind the API)."""
    outside = tmp_path / "backbone.pt"
    outside.write_bytes(b"not read: refused before anything opens it")
    run_id = make_run(epochs=1, space={"macro": "plain-unet", "channels": 4, "depth": 1, "search_blocks": ["down.0"]})
    from backend.core.db import session_scope
    from backend.models import Run

    with session_scope() as s:
        row = s.get(Run, run_id)
        row.config = {**row.config, "space": {**row.config["space"], "init_from": str(outside)}}
        s.add(row)
        s.commit()
    control.launch(run_id)
    run = get_run(run_id)
    assert run.status == "failed" and run.pid is None
    assert "space.init_from" in run.status_reason and "data root" in run.status_reason, run.status_reason


def test_cancel_a_running_local_run_kills_its_group(worker_home):
    run_id = make_run(epochs=200, fake={"step_s": 0.1})
    control.launch(run_id)
    run = _drive(run_id, {"running"})
    wait_for(lambda: file_seqs(run.run_dir), 30, what="first event")
    assert control.cancel(run_id) == "cancelled"
    run = get_run(run_id)
    with pytest.raises(ProcessLookupError):
        os.killpg(run.pid, 0)
    assert stored_seqs(run_id) == file_seqs(run.run_dir), "events up to the cancel are stored"
    reconcile()
    assert get_run(run_id).status == "cancelled", "a cancelled run is not requeued"
    assert control.cancel(run_id) == "cancelled", "cancel is idempotent"


def test_cancel_before_launch_never_starts_it(worker_home):
    run_id = make_run(epochs=1)
    assert control.cancel(run_id) == "cancelled"
    assert control.launch(run_id) == "cancelled"
    assert get_run(run_id).pid is None


def test_killed_mid_search_is_requeued_and_resumes_from_its_checkpoint(worker_home):
    run_id = make_run(epochs=12, fake={"step_s": 0.15})
    control.launch(run_id)
    run = _drive(run_id, {"running"})
    ckpt = os.path.join(run.run_dir, "checkpoints", "last.json")
    wait_for(lambda: os.path.exists(ckpt) and json.load(open(ckpt))["step"] >= 3, 30, what="checkpoint at step 3")
    os.killpg(run.pid, signal.SIGKILL)  # the whole group dies at once, as on a failed node
    run = _drive(run_id, {"succeeded", "failed"}, timeout=90)
    assert run.status == "succeeded", run.status_reason
    assert run.attempt == 2
    seqs = file_seqs(run.run_dir)
    assert seqs == list(range(1, len(seqs) + 1)) and stored_seqs(run_id) == seqs, "no event lost or doubled"
    resumed = [json.loads(l)["payload"] for l in open(os.path.join(run.run_dir, "events.jsonl"))
               if '"status"' in l and '"running"' in l]
    assert len(resumed) == 2 and resumed[1]["resumed_from"] >= 3, "the second attempt resumed from the checkpoint"


def test_restarts_stop_at_max_restarts(worker_home):
    run_id = make_run(epochs=200, fake={"step_s": 0.1}, resources={"max_restarts": 1})
    control.launch(run_id)
    for attempt in (1, 2):
        run = _drive(run_id, {"running"})
        assert run.attempt == attempt
        wait_for(lambda: len(file_seqs(run.run_dir)) >= 2 * attempt, 30, what="events of this attempt")
        os.killpg(run.pid, signal.SIGKILL)
        if attempt == 1:
            run = _drive(run_id, {"submitted", "running"})
    run = _drive(run_id, {"failed"})
    assert "gave up after 1 restarts" in run.status_reason and run.attempt == 2


def test_a_silent_run_becomes_stale_and_recovers(worker_home, monkeypatch):
    run_id = make_run(epochs=2, fake={"step_s": 3.0})
    control.launch(run_id)
    _drive(run_id, {"running"})
    monkeypatch.setenv("NASFORGE_STALE_AFTER_S", "0.5")
    from worker.settings import get_worker_settings

    get_worker_settings.cache_clear()
    try:
        time.sleep(1.0)
        run = _drive(run_id, {"stale"}, timeout=10)
        assert "no event or heartbeat" in run.status_reason
        monkeypatch.setenv("NASFORGE_STALE_AFTER_S", "300")
        get_worker_settings.cache_clear()
        assert _drive(run_id, {"running", "succeeded"}).status in ("running", "succeeded"), "shown, not failed"
    finally:
        get_worker_settings.cache_clear()
    assert _drive(run_id, {"succeeded", "failed"}).status == "succeeded"



def test_tail_active_stores_new_events_between_sweeps_and_finishes_a_run_at_once(worker_home):
    from worker.reconcile import tail_active

    run_id = make_run(epochs=3, fake={"step_s": 0.3})
    control.launch(run_id)
    run = _drive(run_id, {"running"})
    wait_for(lambda: len(file_seqs(run.run_dir)) >= 3, 30, what="a few events")
    counts = tail_active()
    assert counts["runs"] >= 1 and counts["events"] >= 1
    stored = stored_seqs(run_id)
    assert stored == list(range(1, len(stored) + 1)) and len(stored) >= 3
    wait_for(lambda: '"succeeded"' in open(os.path.join(run.run_dir, "events.jsonl")).read(), 30, what="the end")
    wait_for(lambda: not os.path.exists(f"/proc/{run.pid}") or open(f"/proc/{run.pid}/stat").read().split(") ")[1][0] == "Z",
             30, what="the runner to exit")
    tail_active()  # no reconcile sweep: the final status event alone moves the run on
    run = get_run(run_id)
    assert run.status == "succeeded", run.status_reason
    assert stored_seqs(run_id) == file_seqs(run.run_dir) == list(range(1, 9))
