"""The MPI orchestrator's dispatch: busy fraction and makespan of asynchronous dispatch against the same trials
in barrier-synchronised batches (the way a synchronous, one-batch-per-generation search would run them).

Trials are simulated sleeps of log-normal duration, drawn from each trial's seed so both runs get the same
durations; each still runs in its own child process, as a real trial does. Goals: busy >= 95%, makespan
<= 0.8x the barrier run.
"""
from __future__ import annotations

import math
import tempfile
import time
from pathlib import Path

from nas_core.discrete import SearchJob
from nas_core.discrete.orchestrator import launch


def run(quick: bool = False, workers: int | str = 16, trials: int | str = 384, median: float | str = 1.0,
        sigma: float | str = 0.5) -> dict:
    workers, trials, median, sigma = int(workers), int(trials), float(median), float(sigma)
    if quick:
        workers, trials, median = 4, 16, 0.2
    out = {"workers": workers, "trials": trials, "median_s": median, "sigma": sigma,
           "expected_trial_s": median * math.exp(sigma ** 2 / 2)}
    with tempfile.TemporaryDirectory(prefix="bench-orchestrator-") as tmp:
        for mode in ("async", "barrier"):
            job = SearchJob(workdir=str(Path(tmp) / mode), method="random", trials=trials, categorical=[8] * 8,
                            barrier=mode == "barrier", silent_worker_s=600,
                            objective_params={"sleep_lognormal": {"median": median, "sigma": sigma}})
            t0 = time.monotonic()
            timing = launch(job, workers + 1)["timing"]
            timing["wall_s"] = time.monotonic() - t0
            out[mode] = timing
    a, b = out["async"], out["barrier"]
    out["makespan_ratio"] = a["makespan_s"] / b["makespan_s"]
    out["figure"] = (f"{workers} ranks, {trials} log-normal trials: busy {a['busy_fraction']:.1%} async vs "
                     f"{b['busy_fraction']:.1%} barrier; makespan {a['makespan_s']:.1f} s = "
                     f"{out['makespan_ratio']:.2f}x barrier ({b['makespan_s']:.1f} s)")
    return out
