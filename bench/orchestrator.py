"""The MPI orchestrator's dispatch: busy fraction and makespan of asynchronous dispatch against the same trials
in barrier-synchronised batches (the way a synchronous, one-batch-per-generation search would run them).

Trials are simulated sleeps of log-normal duration, drawn from each trial's seed so both runs get the same
durations; each still runs in its own child process, as a real trial does. Goals: busy >= 95%, makespan
<= 0.8x the barrier run. Busy time is what the workers spent inside trials (child start-up included); the
per-worker timelines also give the dispatch gap between two trials and the final drain, when no trial is
left to give and workers wait for the last long ones (a property of the workload, not of the dispatcher).

`variant=real` runs the real trial function instead: tiny candidates trained on synthetic tiles by 1 and by 3
trial ranks (`python -m bench orchestrator variant=real`), for trials per minute, busy fraction and makespan.
"""
from __future__ import annotations

import math
import os
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from nas_core.discrete import SearchJob
from nas_core.discrete.orchestrator import launch
from nas_core.rundir import read_json


def run(quick: bool = False, workers: int | str = 16, trials: int | str = 768, median: float | str = 1.0,
        sigma: float | str = 0.5, variant: str = "sleep") -> dict:
    """`variant=sleep`: simulated trials, async against barrier dispatch. `variant=real`: tiny real candidates."""
    if variant == "real":
        return run_real(quick, trials=6 if trials == 768 else trials,
                        workers=3 if workers == 16 else workers)
    if variant != "sleep":
        raise ValueError(f"variant: {variant!r}; use sleep or real")
    workers, trials, median, sigma = int(workers), int(trials), float(median), float(sigma)
    if quick:
        workers, trials, median = 4, 16, 0.2
    out = {"workers": workers, "trials": trials, "median_s": median, "sigma": sigma,
           "expected_trial_s": median * math.exp(sigma ** 2 / 2), "load_avg_before": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory(prefix="bench-orchestrator-") as tmp:
        for mode in ("async", "barrier"):
            job = SearchJob(workdir=str(Path(tmp) / mode), method="random", trials=trials, categorical=[8] * 8,
                            barrier=mode == "barrier", silent_worker_s=600,
                            objective_params={"sleep_lognormal": {"median": median, "sigma": sigma}})
            t0 = time.monotonic()
            timing = launch(job, workers + 1)["timing"]
            timing["wall_s"] = time.monotonic() - t0
            timing.update(_timelines(job.run_dir.trials_checkpoint))
            out[mode] = timing
    out["load_avg_after"] = os.getloadavg()[0]  # the machine is shared: say how busy it was
    a, b = out["async"], out["barrier"]
    out["makespan_ratio"] = a["makespan_s"] / b["makespan_s"]
    out["figure"] = (f"{workers} ranks, {trials} log-normal trials: busy {a['busy_fraction']:.1%} async "
                     f"({a['busy_before_drain']:.1%} before the final drain) vs {b['busy_fraction']:.1%} barrier; "
                     f"makespan {a['makespan_s']:.1f} s = {out['makespan_ratio']:.2f}x barrier ({b['makespan_s']:.1f} s); "
                     f"load avg {out['load_avg_after']:.0f}")
    return out


def run_real(quick: bool = False, trials: int | str = 6, workers: int | str = 3) -> dict:
    """The real objective (`nas_core.discrete._candidate.train_candidate`): tiny candidates (4 channels, depth 1,
    32 px synthetic tiles, one epoch) trained by 1 and by `workers` trial ranks under mpirun, same trials. Trials
    per minute, busy fraction and makespan ratio; on a machine with fewer cores than ranks the ranks share them."""
    from nas_core.config import parse_experiment
    from nas_core.discrete.trial import TRAIN

    trials, workers = int(trials), int(workers)
    if quick:
        trials = 2
    ops = ["none", "max_pool_3x3", "skip_connect", "sep_conv_3x3"]
    exp = parse_experiment({
        "name": "bench-orchestrator-real", "seed": 0,
        "space": {"channels": 4, "depth": 1, "cells": {t: {"ops": ops, "nodes": 2} for t in ("normal", "down", "up")}},
        "data": {"tile_size": 32, "num_tiles": 8, "batch_size": 4},
        "search": {"method": "random", "trials": trials, "trial_epochs": 1},
    })
    out = {"variant": "real", "trials": trials, "cores": os.cpu_count(), "load_avg_before": os.getloadavg()[0]}
    env = {"OMP_NUM_THREADS": "1"}  # one torch thread per trial: the ranks, not the threads, share the cores
    with tempfile.TemporaryDirectory(prefix="bench-orchestrator-real-") as tmp:
        for n in (1, workers):
            job = SearchJob.from_experiment(exp, Path(tmp) / f"w{n}", silent_worker_s=600)
            assert job.objective == TRAIN
            t0 = time.monotonic()
            summary = launch(job, n + 1, extra_env=env)
            timing = summary["timing"]
            timing.update(wall_s=time.monotonic() - t0, failed=summary["failed"],
                          trials_per_min=60 * trials / timing["makespan_s"], **_timelines(job.run_dir.trials_checkpoint))
            out[f"workers_{n}"] = timing
    out["load_avg_after"] = os.getloadavg()[0]
    one, many = out["workers_1"], out[f"workers_{workers}"]
    out["makespan_ratio"] = many["makespan_s"] / one["makespan_s"]
    out["figure"] = (f"real objective, {trials} tiny candidates (C=4, depth 1, 32 px synthetic tiles, 1 epoch) on "
                     f"{os.cpu_count()} cores: 1 trial worker {one['trials_per_min']:.1f} trials/min, busy "
                     f"{one['busy_fraction']:.0%}; {workers} workers {many['trials_per_min']:.1f} trials/min, busy "
                     f"{many['busy_fraction']:.0%}; makespan {many['makespan_s']:.0f} s = {out['makespan_ratio']:.2f}x "
                     f"one worker's ({one['makespan_s']:.0f} s); load avg {out['load_avg_after']:.0f}")
    return out


def _timelines(checkpoint: Path) -> dict:
    """Per-worker gaps between trials and the drain at the end, from the trials' own start/finish times."""
    results = [r for _, r in read_json(checkpoint)["finished"]]
    start, end = min(r["started"] for r in results), max(r["finished"] for r in results)
    by_worker = defaultdict(list)
    for r in results:
        by_worker[r["worker"]].append(r)
    busy = gaps = drain = 0.0
    n_gaps = 0
    for rs in by_worker.values():
        rs.sort(key=lambda r: r["started"])
        busy += sum(r["finished"] - r["started"] for r in rs)
        gaps += sum(b["started"] - a["finished"] for a, b in zip(rs, rs[1:])) + rs[0]["started"] - start
        n_gaps += len(rs)
        drain += end - rs[-1]["finished"]
    w = len(by_worker)
    return {"dispatch_gap_ms": 1000 * gaps / max(n_gaps, 1), "drain_s_per_worker": drain / w,
            "busy_before_drain": busy / (w * (end - start) - drain)}
