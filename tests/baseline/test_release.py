"""The worker's decision on a queued random baseline, on real database rows and through `control.launch` (real
Redis lock, real local launcher): it waits for its search, starts with the search's measured compute as its
budget, and is cancelled with its search."""
from __future__ import annotations

import json

from backend import crud
from backend.core.db import session_scope
from nas_core.config import ExperimentConfig
from nas_core.rundir import RunDir, read_config
from worker import control
from worker.baseline import decide, search_compute

T0 = 1_790_000_000.0


def _events(run_id: int, rows: list[tuple[float, str, dict]]) -> None:
    """Store (time offset, kind, payload) rows as the watcher stores a run's log."""
    with session_scope() as s:
        crud.ingest_events(s, run_id, [{"seq": i + 1, "time": T0 + t, "kind": k, "payload": p}
                                       for i, (t, k, p) in enumerate(rows)])


def _status(run_id: int, status: str, reason: str = "") -> None:
    with session_scope() as s:
        for step in {"running": ["running"], "succeeded": ["running", "succeeded"],
                     "failed": ["running", "failed"], "cancelled": ["cancelled"]}[status]:
            crud.set_run_status(s, run_id, step, status_reason=reason)


def _decide(run_id: int):
    with session_scope() as s:
        return decide(s, crud.get_run(s, run_id))


def _run(run_id: int):
    with session_scope() as s:
        return crud.get_run(s, run_id)


def test_a_baseline_waits_for_its_search_then_gets_its_measured_compute(launch_search):
    search, bases = launch_search()
    assert len(bases) == 3
    assert _decide(search) is None, "a search run is launched as it is"
    d = _decide(bases[0])
    assert d.action == "wait" and f"search run {search}" in d.reason

    # A search stage of 7.5 s (then decode, retrain, evaluate, which a baseline's trial budget does not match).
    _status(search, "running")
    _events(search, [(0, "status", {"state": "running", "stage": "search"}), (3, "heartbeat", {}),
                     (6, "metric", {"stage": "search", "epoch": 0, "train_loss": 1.0}),
                     (7.5, "status", {"state": "running", "stage": "decode"}),
                     (8, "status", {"state": "running", "stage": "retrain"}),
                     (40, "status", {"state": "succeeded"})])
    assert control.launch(bases[0]) == "queued", "the search is still running"
    run = _run(bases[0])
    assert run.pid is None and f"waiting for search run {search} (running)" in run.status_reason
    assert run.config["search"]["compute_budget_s"] is None, "no budget before the search is measured"

    _status(search, "succeeded")
    d = _decide(bases[1])
    assert d.action == "launch" and d.compute.processes == 1 and d.compute.attempts == 1
    assert abs(d.compute.seconds - 7.5) < 1e-6
    assert control.launch(bases[1]) == "submitted"
    run = _run(bases[1])
    assert run.pid, "launched through the local launcher"
    assert abs(run.config["search"]["compute_budget_s"] - 7.5) < 1e-6
    assert run.config["search"]["method"] == "random" and run.config["search"]["trials"] == 100000
    on_disk, overrides = read_config(RunDir(run.run_dir).config)  # the experiment, and the `run:` overrides beside it
    assert ExperimentConfig.model_validate(on_disk).search.compute_budget_s == run.config["search"]["compute_budget_s"]
    assert (overrides.kind, overrides.baseline_of) == ("baseline", search)
    control.cancel(bases[1])  # the real search would take a while; its protocol is tested end to end elsewhere
    control.cancel(bases[2])


def test_the_stage_is_summed_over_attempts_without_the_time_between_them(launch_search):
    search, bases = launch_search()
    # Attempt 1 dies 5 s into the search (its last sign of life); 100 s later attempt 2 resumes and searches 4 s.
    _events(search, [(0, "status", {"state": "running", "stage": "search"}), (2, "heartbeat", {}),
                     (5, "progress", {"stage": "search", "epoch": 0, "epochs": 1, "fraction": 0.5, "eta_s": 5}),
                     (105, "status", {"state": "running", "stage": "search"}), (106, "log", {"message": "resumed"}),
                     (109, "status", {"state": "running", "stage": "decode"})])
    _status(search, "succeeded")
    with session_scope() as s:
        c = search_compute(s, crud.get_run(s, search))
    assert c.attempts == 2 and abs(c.stage_s - 9.0) < 1e-6


def test_a_data_parallel_search_counts_every_process(launch_search):
    search, _ = launch_search(distributed={"engine": "ddp"}, launcher={"processes": 2})
    _events(search, [(0, "status", {"state": "running", "stage": "search"}),
                     (4, "status", {"state": "running", "stage": "decode"})])
    with session_scope() as s:
        assert search_compute(s, crud.get_run(s, search)).seconds == 8.0, "processes as launched"
    # The ranks the search itself reports win over the launch request.
    search, _ = launch_search(distributed={"engine": "ddp"}, launcher={"processes": 2})
    _events(search, [(0, "status", {"state": "running", "stage": "search"}),
                     (3, "metric", {"stage": "search", "epoch": 0, "train_loss": 1.0, "ranks": 3}),
                     (4, "status", {"state": "running", "stage": "decode"})])
    with session_scope() as s:
        c = search_compute(s, crud.get_run(s, search))
    assert c.processes == 3 and c.seconds == 12.0


def test_a_data_parallel_searchs_baseline_runs_one_trial_worker_per_search_process(launch_search):
    search, bases = launch_search(distributed={"engine": "ddp"}, launcher={"processes": 2})
    _events(search, [(0, "status", {"state": "running", "stage": "search"}),
                     (4, "status", {"state": "running", "stage": "decode"})])
    _status(search, "succeeded")
    assert _run(bases[0]).resources["processes"] == 2, "created with the search's resources"
    assert control.launch(bases[0]) == "submitted"
    run = _run(bases[0])
    # 2 search processes x 4 s: 8 worker-seconds, spent by 2 trial workers (ranks 1-2) beside rank 0.
    assert run.resources["processes"] == 3 and run.config["search"]["compute_budget_s"] == 8.0
    assert run.config["distributed"]["engine"] == "none", "a discrete search's ranks are never DDP ranks"
    ExperimentConfig.model_validate(run.config)  # a launch shape the schema accepts
    argv = json.loads(open(f"{run.run_dir}/local.json").read())["argv"]
    assert "torchrun" not in " ".join(argv) and argv[argv.index("-np") + 1] == "3", argv
    control.cancel(bases[0])


def test_trial_workers_match_the_search_processes_on_either_launcher():
    from worker.baseline import trial_workers

    assert trial_workers({"processes": 1}, 1)["processes"] == 1
    assert trial_workers({"processes": 4}, 4)["processes"] == 5
    one_node = trial_workers({"slurm": {"nodes": 1, "tasks_per_node": 4}}, 4)["slurm"]
    assert (one_node["nodes"], one_node["tasks_per_node"]) == (1, 5)
    two_nodes = trial_workers({"slurm": {"nodes": 2, "tasks_per_node": 2}}, 4)["slurm"]
    assert (two_nodes["nodes"], two_nodes["tasks_per_node"]) == (2, 3)


def test_a_failed_search_cancels_its_baselines_with_the_reason(launch_search):
    search, bases = launch_search()
    _status(search, "failed", reason="FloatingPointError: loss is nan\ntraceback ...")
    assert control.launch(bases[0]) == "cancelled"
    run = _run(bases[0])
    assert run.pid is None
    assert f"search run {search} failed: FloatingPointError: loss is nan" in run.status_reason
    assert "traceback" not in run.status_reason


def test_a_cancelled_search_cancels_its_baselines(launch_search):
    search, bases = launch_search()
    _status(search, "cancelled", reason="cancelled by user")
    assert [control.launch(b) for b in bases] == ["cancelled"] * 3
    assert f"search run {search} cancelled" in _run(bases[2]).status_reason


def test_a_succeeded_search_without_a_search_stage_fails_the_baseline_with_the_fix(launch_search):
    search, bases = launch_search()
    _events(search, [(0, "status", {"state": "running", "stage": "retrain"}), (9, "status", {"state": "succeeded"})])
    _status(search, "succeeded")
    assert control.launch(bases[0]) == "failed"
    assert "search.compute_budget_s" in _run(bases[0]).status_reason
