"""Random baselines at equal compute: a baseline run waits for its search run, then gets the search's measured
compute (search-stage wall time x processes) as its trial budget, and as many trial workers as the search had
processes. See docs/search.md, "Random baseline"."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from sqlmodel import Session, col, select

from backend.models import Event, Run, RunStatus
from nas_core.config import LauncherConfig, SearchConfig
from nas_core.events import HEARTBEAT_S, EventKind, StatusState

# Inside one live attempt the event sink writes at least every HEARTBEAT_S; a silence of three missed beats before
# a status event is the time between two attempts (queued, requeued), not compute.
_ALIVE_GAP_S = 3 * HEARTBEAT_S
# The budget, not the trial count, must end a baseline's trials: the count is lifted to the schema's maximum.
_MAX_TRIALS = next(m.le for m in SearchConfig.model_fields["trials"].metadata if getattr(m, "le", None))


@dataclass
class Compute:
    """A finished search's compute: `seconds` = `stage_s` (wall time in the search stage) x `processes`."""

    stage_s: float
    processes: int
    attempts: int

    @property
    def seconds(self) -> float:
        return self.stage_s * self.processes


@dataclass
class Decision:
    """What to do with a queued baseline: wait for its search, launch it with a budget, or end it."""

    action: Literal["wait", "launch", "cancel", "fail"]
    reason: str
    compute: Compute | None = None


def decide(session: Session, run: Run) -> Decision | None:
    """The decision for a queued run; None when it is not a random baseline linked to a search (launch it as it
    is). A hand-designed baseline (`run.network`) trains its network on the retrain budget, no compute to match:
    it starts at once, beside its search."""
    if run.kind != "baseline" or run.baseline_of is None or run.network is not None:
        return None
    search = session.get(Run, run.baseline_of)
    if search is None:
        return Decision("fail", f"its search run {run.baseline_of} no longer exists, so there is no compute to match")
    if search.status in (RunStatus.failed, RunStatus.cancelled):
        why = f": {search.status_reason.splitlines()[0][:300]}" if search.status_reason.strip() else ""
        return Decision("cancel", f"search run {search.id} {search.status}{why}; a baseline at equal compute has "
                                  "nothing to match (retry the search, then this run)")
    if search.status != RunStatus.succeeded:
        return Decision("wait", f"waiting for search run {search.id} ({search.status}) to succeed: the baseline gets "
                                "the search's measured compute as its budget")
    compute = search_compute(session, search)
    if compute is None or compute.seconds <= 0:
        return Decision("fail", f"search run {search.id} succeeded but its event log has no search stage to time "
                                "(no status event with state running, stage search); launch this baseline by hand "
                                "with search.compute_budget_s set")
    return Decision("launch", f"budget {compute.seconds:.0f} s = search run {search.id}'s search stage "
                              f"{compute.stage_s:.0f} s x {compute.processes} process(es)", compute)


def search_compute(session: Session, search: Run) -> Compute | None:
    """Wall time of the run's search stage, summed over its attempts, times the processes it ran on.

    A stage starts at a `status` event {state: running, stage: search} and ends at the next `status` event; an
    attempt killed in the stage ends at its last event, so time spent queued between attempts is not counted.
    """
    rows = session.exec(select(Event.kind, Event.time, Event.payload).where(
        Event.run_id == search.id,
        col(Event.kind).in_((EventKind.status, EventKind.heartbeat, EventKind.progress, EventKind.metric, EventKind.log)))
        .order_by(col(Event.seq))).all()
    total, start, last, attempts, ranks = 0.0, None, None, 0, 0
    for kind, t, payload in rows:
        payload = payload or {}
        if kind == EventKind.metric and isinstance(payload.get("ranks"), int):
            ranks = max(ranks, payload["ranks"])
        if kind != EventKind.status:
            last = t
            continue
        if start is not None:
            total += (t if t - last <= _ALIVE_GAP_S else last) - start
            start = None
        if payload.get("state") == StatusState.running and payload.get("stage") == "search":
            start = last = t
            attempts += 1
        else:
            last = t
    if start is not None:
        total += last - start
    if not attempts:
        return None
    return Compute(stage_s=total, processes=ranks or _processes(search), attempts=attempts)


def _processes(search: Run) -> int:
    """Processes of a data-parallel search as launched (one when it ran without a distributed engine)."""
    cfg = search.config or {}
    if (cfg.get("distributed") or {}).get("engine", "none") == "none":
        return 1
    launcher = LauncherConfig.model_validate({**(cfg.get("launcher") or {}), **(search.resources or {})})
    if search.launcher == "slurm":
        return launcher.slurm.nodes * launcher.slurm.tasks_per_node
    return launcher.processes


def budgeted_config(config: dict[str, Any], compute: Compute) -> dict[str, Any]:
    """The baseline's config with the search's compute as its trial budget (and no trial count to stop first),
    its launch shape from `trial_workers`, and no data-parallel engine (a discrete search's ranks are its MPI
    orchestrator, never DDP/Horovod ranks)."""
    search = dict(config.get("search") or {}, compute_budget_s=round(compute.seconds, 3), trials=_MAX_TRIALS)
    distributed = dict(config.get("distributed") or {}, engine="none")
    launcher = trial_workers(config.get("launcher") or {}, compute.processes)
    return {**config, "search": search, "distributed": distributed, "launcher": launcher}


def trial_workers(resources: dict[str, Any], processes: int) -> dict[str, Any]:
    """The baseline's launch resources: as many trial workers as the search had processes, so both spend the same
    worker-seconds in the same wall-clock shape. One process runs its trials itself; P > 1 takes P + 1 ranks of the
    MPI orchestrator (rank 0 dispatches, ranks 1..P train). On SLURM the extra rank goes on the first node's share:
    one node gets tasks_per_node P + 1; several keep their nodes and get one more task each (rank 0 takes one slot,
    so the trial workers are P + nodes - 1; the budget, in worker-seconds, still ends the trials at equal compute)."""
    n = 1 if processes <= 1 else processes + 1
    slurm = dict(resources.get("slurm") or {})
    nodes = int(slurm.get("nodes") or 1)
    if processes <= 1:
        slurm.update(nodes=1, tasks_per_node=1)
    elif nodes == 1:
        slurm.update(tasks_per_node=n)
    else:
        slurm.update(tasks_per_node=int(slurm.get("tasks_per_node") or 1) + 1)
    return {**resources, "processes": n, "slurm": slurm}
