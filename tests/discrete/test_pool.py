"""The search without MPI: one process or a local pool of trial processes, with retries, events and resume."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from conftest import candidate_events, finished_trials, starts
from nas_core.config import parse_experiment
from nas_core.discrete import SearchJob, run_search
from nas_core.discrete.checkpoint import Checkpoint

PAYLOAD_KEYS = {"trial", "genotype", "iou", "train_time_s", "params_count", "proxies", "status", "attempt"}


def _job(tmp_path, **kw) -> SearchJob:
    fields = dict(workdir=str(tmp_path / "search"), method="evolution", trials=10, categorical=[4] * 5,
                  population=4, tournament=2, objective_params={"state_dir": str(tmp_path / "state")})
    fields.update(kw)
    return SearchJob(**fields)


def test_pool_runs_every_trial_once_and_retries_failures_on_another_worker(tmp_path):
    job = _job(tmp_path, objective_params={"state_dir": str(tmp_path / "state"), "raise_on": [2], "kill_on": [5]})
    summary = run_search(job, workers=2)
    assert summary["trials"] == 10 and summary["failed"] == 0
    finished = finished_trials(job.root)
    assert sorted(finished) == list(range(10)) and all(r["status"] == "ok" for r in finished.values())
    # Exactly one execution per trial, two for the failed ones (attempt 0 failed, attempt 1 succeeded).
    runs = starts(tmp_path / "state")
    assert sorted(t for t, _, _ in runs) == sorted(list(range(10)) + [2, 5])
    events = candidate_events(job.root)
    assert all(PAYLOAD_KEYS <= e.keys() for e in events)
    final = [e for e in events if e["final"]]
    assert sorted(e["trial"] for e in final) == list(range(10))
    for t in (2, 5):
        first, second = [e for e in events if e["trial"] == t]
        assert first["status"] in ("error", "killed") and not first["final"] and second["status"] == "ok"
        assert first["worker"] != second["worker"]
    assert summary["best_iou"] == max(r["iou"] for r in finished.values())


def test_a_trial_failing_twice_is_recorded_failed_and_the_search_goes_on(tmp_path):
    job = _job(tmp_path, trials=4, max_attempts=1, objective_params={"raise_on": [1]})
    summary = run_search(job, workers=0)
    finished = finished_trials(job.root)
    assert summary["failed"] == 1 and finished[1]["status"] == "error" and len(finished) == 4


def test_killed_search_resumes_and_redoes_only_unfinished_trials(tmp_path):
    # The trial's parent is the pool process here: killing it is a whole search dying mid-run.
    job = _job(tmp_path, trials=12, objective_params={"state_dir": str(tmp_path / "state"), "kill_worker_on": [6],
                                                      "sleep_s": 0.05})
    job.save()
    script = textwrap.dedent(f"""
        from nas_core.discrete import SearchJob, run_search
        run_search(SearchJob.load({str(job.root / 'job.json')!r}), workers=2)
    """)
    first = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert first.returncode == -9
    done_before = set(finished_trials(job.root))
    assert 0 < len(done_before) < 12 and 6 not in done_before
    runs_before = starts(tmp_path / "state")
    summary = run_search(job, workers=2)
    assert summary["trials"] == 12 and sorted(finished_trials(job.root)) == list(range(12))
    redone = [t for t, _, pid in set(starts(tmp_path / "state")) - set(runs_before)]
    assert not done_before & set(redone)
    assert 6 in redone
    final = [e["trial"] for e in candidate_events(job.root) if e["final"]]
    assert sorted(final) == list(range(12))  # each trial's final event exactly once across both runs


def test_checkpoint_of_another_search_is_refused(tmp_path):
    job = _job(tmp_path, trials=2)
    run_search(job, workers=0)
    with pytest.raises(ValueError, match="checkpoint.json: this checkpoint belongs to a different search"):
        run_search(_job(tmp_path, trials=3), workers=0)


def test_checkpoint_write_is_atomic_and_reloads(tmp_path):
    ckpt = Checkpoint(tmp_path / "c.json", "abc")
    for n in (0, 1):
        ckpt.issue({"trial": n, "attempt": 0, "genotype": {"choices": [n]}, "seed": n, "params": {"big": "x" * 1000}})
    ckpt.finish({"trial": 1, "attempt": 0, "status": "ok"})
    assert not (tmp_path / "c.json").exists()  # nothing written until save
    ckpt.save()
    again = Checkpoint.open(tmp_path / "c.json", "abc")
    # Only what varies per trial is kept: the job holds the shared parts.
    assert again.unfinished == [{"trial": 0, "attempt": 0, "genotype": {"choices": [0]}, "seed": 0}]
    assert list(again.finished) == [1] and again.resumes == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.json"]


def test_search_job_validation_names_the_field(tmp_path):
    with pytest.raises(ValueError, match="objective"):
        SearchJob(workdir=str(tmp_path), objective="subprocess:call")
    exp = parse_experiment({"name": "x", "search": {"method": "darts"}})
    with pytest.raises(ValueError, match="search.method"):
        SearchJob.from_experiment(exp, tmp_path)
    exp = parse_experiment({"name": "x", "seed": 4, "search": {"method": "evolution", "trials": 7, "population": 5}})
    job = SearchJob.from_experiment(exp, tmp_path)
    assert (job.trials, job.seed, job.population, job.tournament) == (7, 4, 5, 5)
    bad = tmp_path / "job.json"
    bad.write_text('{"workdir": "w", "trials": 0}')
    with pytest.raises(ValueError, match="job.json: invalid search job\n  trials"):
        SearchJob.load(bad)


def test_dispatch_path_never_imports_torch(tmp_path):
    job = _job(tmp_path, method="random", trials=3)
    job.save()
    script = textwrap.dedent(f"""
        import sys
        from nas_core.discrete import SearchJob, run_search
        import nas_core.discrete.orchestrator
        run_search(SearchJob.load({str(job.root / 'job.json')!r}), workers=2)
        assert "torch" not in sys.modules, "the dispatcher imported torch"
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert len(finished_trials(job.root)) == 3


def test_search_reports_rank_correlation_of_each_proxy_with_trained_iou(tmp_path):
    job = _job(tmp_path, method="random", trials=8, objective_params={"proxies": True})
    summary = run_search(job, workers=0)
    corr = summary["proxy_correlations"]
    assert corr["inverse"]["spearman"] == pytest.approx(-1) and corr["inverse"]["kendall"] == pytest.approx(-1)
    assert corr["monotone"]["spearman"] == pytest.approx(1) and corr["monotone"]["n"] == 8
    from nas_core.events import read_events

    done = [e for _, e in read_events(job.root / "events.jsonl") if e["kind"] == "status"][-1]["payload"]
    assert done["state"] == "done" and done["proxy_correlations"] == corr


def test_prescreen_trains_only_the_top_candidates_by_proxy(tmp_path):
    # The synthetic scorer's "monotone" proxy ranks exactly as the objective: the trained ones must be the
    # best `trials` of the screened candidates.
    job = _job(tmp_path, method="random", trials=3, prescreen=12, prescreen_proxy="monotone", objective_params={})
    summary = run_search(job, workers=2)
    events = [e for e in candidate_events(job.root) if e["final"]]
    screened = [e for e in events if e["stage"] == "prescreen"]
    trained = [e for e in events if e["stage"] == "train"]
    assert len(screened) == 12 and all(e["iou"] is None and "monotone" in e["proxies"] for e in screened)
    top = sorted(screened, key=lambda e: -e["proxies"]["monotone"])[:3]
    assert sorted(map(str, (e["genotype"] for e in trained))) == sorted(map(str, (e["genotype"] for e in top)))
    assert summary["trials"] == 3 and summary["prescreened"] == 12
    assert summary["best_iou"] == max(e["iou"] for e in trained)
    with pytest.raises(ValueError, match="prescreen: pre-screening picks among random candidates"):
        _job(tmp_path, method="evolution", prescreen=20)
    with pytest.raises(ValueError, match="prescreen: score at least as many"):
        _job(tmp_path, method="random", trials=10, prescreen=5)


def test_compute_budget_stops_new_trials_once_spent(tmp_path):
    # Trials of ~0.3 s each against a 1 s budget: a few trials, far fewer than the cap of 50.
    job = _job(tmp_path, method="random", trials=50, compute_budget_s=1.0, objective_params={"sleep_s": 0.3})
    summary = run_search(job, workers=0)
    finished = finished_trials(job.root)
    assert summary["stopped_by"] == "compute_budget" and summary["trials"] == len(finished)
    assert 2 <= len(finished) <= 5
    spent = sum(r["finished"] - r["started"] for r in finished.values())
    assert spent >= 1.0 and spent - 1.0 < max(r["finished"] - r["started"] for r in finished.values())
    assert summary["compute_s"] == pytest.approx(spent)
