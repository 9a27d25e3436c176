"""The bookkeeping every dispatcher shares (MPI ranks or a local pool): ask the strategy when a worker is
free, retry a failed trial once on another worker, tell results as they come, log and checkpoint each.

Dispatchers call `report`, then `assign`, send the trials, and only then `flush`: the checkpoint write
(fsynced) and the event writes stay off the path between a worker's report and its next trial.
"""
from __future__ import annotations

import time
from collections import deque
from typing import Any

from nas_core.discrete.checkpoint import Checkpoint
from nas_core.discrete.job import SearchJob
from nas_core.events import HEARTBEAT_S, EventKind, EventLog, StatusState, read_events


class Scheduler:
    """Matches trials to idle workers. Workers are opaque ids (MPI ranks, pool slots)."""

    def __init__(self, job: SearchJob, workers: list[int]):
        if not workers:
            raise ValueError("a search needs at least one worker")
        self.job = job
        self.workers = list(workers)
        self.checkpoint = Checkpoint.open(job.run_dir.trials_checkpoint, job.fingerprint())
        # A resumed search must not re-propose what the first run proposed, so its strategy seed moves on.
        self.strategy = job.build_strategy(seed=job.seed + 1_000_003 * self.checkpoint.resumes)
        self.events_path = job.run_dir.events
        # No fsync per event: the checkpoint is fsynced, and a resumed run restores any final event a crash
        # lost (see _replay); a killed process loses nothing that it wrote. The heartbeat covers trials longer
        # than the watcher's stale-after window, during which the dispatcher has nothing else to say.
        self.events = EventLog(self.events_path, fsync=False, heartbeat_s=HEARTBEAT_S)
        self._pending: list[dict[str, Any]] = []  # candidate payloads written at the next flush
        self.busy: dict[int, dict[str, Any]] = {}
        self.queue: deque[tuple[dict[str, Any], int | None]] = deque()  # (spec, worker to avoid)
        self.next_number = max(self.checkpoint.issued, default=-1) + 1
        self.stats = {"busy_s": 0.0, "first_dispatch": None, "last_report": None}
        # Worker-seconds spent in finished trials, this run and before (for a compute budget).
        self.used_s = sum(_duration(r) for r in self.checkpoint.finished.values())
        self._replay()

    def _replay(self) -> None:
        ckpt = self.checkpoint
        for result in ckpt.finished.values():
            if result.get("stage") != "prescreen":
                self.strategy.tell(result["genotype"], result["iou"] if result["status"] == "ok" else None)
        self.queue.extend((self._spec(rec), None) for rec in ckpt.unfinished)
        # The checkpoint is written before the event, so a kill in between leaves an event to restore.
        logged = {(e["payload"].get("trial"), e["payload"].get("attempt")) for _, e in read_events(self.events_path)
                  if e["kind"] == EventKind.candidate and e["payload"].get("final")}
        for result in ckpt.finished.values():
            if (result["trial"], result["attempt"]) not in logged:
                self._log_candidate(result, final=True)
        self.flush()
        state = StatusState.resumed if ckpt.resumes else StatusState.running
        self.events.append(EventKind.status, {"state": state, "search": "discrete",
                                      "method": self.job.method, "trials": self.job.trials, "prescreen": self.job.prescreen,
                                      "workers": len(self.workers), "worker_ids": self.workers,
                                      "finished": len(ckpt.finished), "redo": len(self.queue)})

    @property
    def total(self) -> int:
        """Trial numbers of the search: the pre-screened candidates first, then the trained ones."""
        return self.job.prescreen + self.job.trials

    @property
    def budget_spent(self) -> bool:
        return self.job.compute_budget_s is not None and self.used_s >= self.job.compute_budget_s

    @property
    def done(self) -> bool:
        if self.budget_spent and not self.busy and not self.queue:
            return True
        return len(self.checkpoint.finished) >= self.total

    def assign(self, idle: list[int]) -> list[tuple[int, dict[str, Any]]]:
        """Trials for some of the `idle` workers; call whenever a worker becomes idle or a result arrives."""
        if self.job.barrier and self.busy:
            return []
        out = []
        for worker in idle:
            if worker in self.busy:
                raise RuntimeError(f"worker {worker} is already running trial {self.busy[worker]['trial']}")
            spec = self._next_for(worker)
            if spec is None:
                continue
            self.busy[worker] = spec
            if self.stats["first_dispatch"] is None:
                self.stats["first_dispatch"] = time.monotonic()
            out.append((worker, spec))
        return out

    def _next_for(self, worker: int) -> dict[str, Any] | None:
        for i, (spec, avoid) in enumerate(self.queue):
            # A retry goes to another worker: the failure may be the worker's (a bad GPU), not the trial's.
            if avoid != worker or len(self.workers) == 1:
                del self.queue[i]
                return spec
        n, m = self.next_number, self.job.prescreen
        if n >= self.total or self.budget_spent:
            return None
        if n < m:
            genotype, stage = self.strategy.ask(), "prescreen"
        elif m == 0:
            genotype, stage = self.strategy.ask(), "train"
        elif any(i not in self.checkpoint.finished for i in range(m)):
            return None  # the top candidates are known only once every pre-screened one is scored
        else:
            genotype, stage = self._screened()[n - m], "train"
        self.next_number += 1
        spec = self._spec({"trial": n, "attempt": 0, "genotype": genotype, "seed": self.job.seed * 1_000_003 + n,
                           "stage": stage})
        self.checkpoint.issue(spec)
        return spec

    def _screened(self) -> list[dict[str, Any]]:
        """Pre-screened genotypes, best proxy score first (failed or unscored ones last)."""
        if getattr(self, "_screened_order", None) is not None:
            return self._screened_order
        name = self.job.prescreen_proxy
        scored = [self.checkpoint.finished[i] for i in range(self.job.prescreen)]
        if not any(name in (r.get("proxies") or {}) for r in scored):
            raise ValueError(f"prescreen_proxy: no pre-screened candidate has a {name!r} score; "
                             f"the scorer gave {sorted({k for r in scored for k in (r.get('proxies') or {})})}")

        def key(r: dict[str, Any]) -> tuple:
            v = (r.get("proxies") or {}).get(name)
            return (v is None, -(v or 0.0), r["trial"])

        self._screened_order = [r["genotype"] for r in sorted(scored, key=key)][: self.job.trials]
        return self._screened_order

    def _spec(self, record: dict[str, Any]) -> dict[str, Any]:
        """A trial spec: the checkpoint's per-trial record plus what every trial of the job shares."""
        from nas_core.discrete.trial import SCORERS

        objective = SCORERS[self.job.objective] if record.get("stage") == "prescreen" else self.job.objective
        return {**record, "budget": self.job.budget, "objective": objective,
                "params": self.job.objective_params, "time_limit_s": self.job.time_limit_s}

    def report(self, worker: int, result: dict[str, Any]) -> None:
        spec = self.busy.pop(worker)
        if result["trial"] != spec["trial"] or result["attempt"] != spec["attempt"]:
            raise RuntimeError(f"worker {worker} reported trial {result['trial']}/{result['attempt']}, "
                               f"but was given {spec['trial']}/{spec['attempt']}")
        # Busy time as the worker saw it (inside the trial), so dispatch latency counts as idle.
        self.stats["busy_s"] += _duration(result)
        self.used_s += _duration(result)
        self.stats["last_report"] = time.monotonic()
        final = result["status"] == "ok" or spec["attempt"] + 1 >= self.job.max_attempts
        if final:
            self.checkpoint.finish(result)
            self._log_candidate(result, final=True)
            if spec.get("stage") != "prescreen":
                self.strategy.tell(result["genotype"], result["iou"] if result["status"] == "ok" else None)
        else:
            self._log_candidate(result, final=False)
            retry = {**spec, "attempt": spec["attempt"] + 1}
            self.checkpoint.issue(retry)
            self.queue.append((retry, worker))

    def _log_candidate(self, result: dict[str, Any], final: bool) -> None:
        # `worker` is the MPI rank (or pool slot) that trained it and `host` the node it ran on; `started`/`finished`
        # (Unix time, as the worker saw them) draw the per-worker timeline and its busy and idle time.
        keys = ("trial", "attempt", "genotype", "iou", "train_time_s", "params_count", "flops", "proxies", "status", "error",
                "worker", "host", "started", "finished")
        payload = {k: result.get(k) for k in keys}
        payload.update(final=final, method=self.job.method, stage=result.get("stage", "train"))
        self._pending.append(payload)

    def flush(self) -> None:
        """Persist: the checkpoint first, then the events (a kill in between leaves an event that the
        resumed run restores, never an event for a trial the checkpoint lacks)."""
        if self.checkpoint.dirty:
            self.checkpoint.save()
        for payload in self._pending:
            self.events.append(EventKind.candidate, payload)
        self._pending.clear()

    def fail(self, message: str) -> None:
        """End the search with an error event; the checkpoint keeps what finished for a restart."""
        self.flush()
        self.events.append(EventKind.status, {"state": StatusState.failed, "error": message, "finished": len(self.checkpoint.finished),
                                      "trials": self.job.trials})
        self.events.close()

    def close(self) -> dict[str, Any]:
        self.flush()
        summary = self.summary()
        self.events.append(EventKind.status, {"state": StatusState.done, **{k: v for k, v in summary.items() if k != "timing"}})
        self.events.close()
        return summary

    def summary(self) -> dict[str, Any]:
        finished = [r for r in self.checkpoint.finished.values() if r.get("stage") != "prescreen"]
        ok = [r for r in finished if r["status"] == "ok"]
        best = max(ok, key=lambda r: r["iou"], default=None)
        st = self.stats
        makespan = (st["last_report"] - st["first_dispatch"]) if st["first_dispatch"] is not None and st["last_report"] else 0.0
        out = {"trials": len(finished), "failed": len(finished) - len(ok), "prescreened": self.job.prescreen,
               "compute_s": self.used_s, "stopped_by": "compute_budget" if self.budget_spent else "trials",
                "best_iou": best["iou"] if best else None, "best_genotype": best["genotype"] if best else None,
                "best_trial": best["trial"] if best else None,
                "timing": {"makespan_s": makespan, "busy_s": st["busy_s"], "workers": len(self.workers),
                           "busy_fraction": st["busy_s"] / (len(self.workers) * makespan) if makespan > 0 else None}}
        if any(r.get("proxies") for r in ok):
            from nas_core.proxies.correlation import correlations  # scipy only, no torch

            out["proxy_correlations"] = correlations(ok)
        return out


def _duration(result: dict[str, Any]) -> float:
    return max(result.get("finished", 0.0) - result.get("started", 0.0), 0.0)
