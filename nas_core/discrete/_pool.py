"""The orchestrator without MPI: trials run in this process, or each in a child process on a local pool of
worker threads (the threads only wait; the work is in the children)."""
from __future__ import annotations

import queue
import threading
from typing import Any

from nas_core.discrete._scheduler import Scheduler
from nas_core.discrete.job import SearchJob
from nas_core.discrete.trial import run_inline, run_trial


def run_local(job: SearchJob, workers: int = 1) -> dict[str, Any]:
    """Run `job` to the end and return its summary; workers=0 runs trials inline in this process."""
    if workers < 0:
        raise ValueError(f"workers: 0 (in this process) or more (got {workers})")
    job.save()
    sched = Scheduler(job, list(range(max(workers, 1))))
    try:
        if workers == 0:
            while not sched.done:
                for w, spec in sched.assign([0]):
                    sched.flush()
                    sched.report(w, run_inline(spec, worker=w))
        else:
            _run_pool(job, sched, workers)
    except BaseException as exc:
        sched.fail(f"{type(exc).__name__}: {exc}")
        raise
    return sched.close()


def _run_pool(job: SearchJob, sched: Scheduler, workers: int) -> None:
    results: queue.Queue = queue.Queue()
    idle = list(range(workers))
    gpus = job.gpus_per_node

    def work(w: int, spec: dict[str, Any]) -> None:
        try:
            results.put((w, run_trial(spec, worker=w, gpu=w % gpus if gpus else None, run_dir=job.root)))
        except BaseException as exc:  # a dispatcher bug, not a trial failure: surface it in the main thread
            results.put((w, exc))

    threads: list[threading.Thread] = []
    while not sched.done:
        for w, spec in sched.assign(idle):
            idle.remove(w)
            t = threading.Thread(target=work, args=(w, spec), daemon=True, name=f"trial-worker-{w}")
            t.start()
            threads.append(t)
        sched.flush()
        if sched.done:
            break
        if len(idle) == workers:
            raise RuntimeError("no trial can be dispatched although the search is not done (scheduler bug)")
        w, result = results.get()
        if isinstance(result, BaseException):
            raise result
        sched.report(w, result)
        idle.append(w)
    for t in threads:
        t.join()
