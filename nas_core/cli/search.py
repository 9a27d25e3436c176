"""`nasforge search EXPERIMENT.yaml --run-dir DIR [--resume] [--stage NAME]`: one run, as the worker launches it
(docs/run-directory.md), or by hand with progress bars."""
from __future__ import annotations

import json
import os
import traceback
from pathlib import Path

import typer



def _load(path: Path):
    """The experiment and the `run:` overrides the worker writes beside it (nas_core.rundir.RunOverrides)."""
    from nas_core.config import ConfigError, parse_experiment
    from nas_core.rundir import read_config

    try:
        data, run = read_config(path)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return parse_experiment(data, where=str(path)), run


def _settle_determinism(deterministic: bool, threads: int | None) -> None:
    import torch

    if threads:
        torch.set_num_threads(threads)
    if deterministic:
        # cuBLAS needs a fixed workspace before its first call to be reproducible.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)


class _Bars:
    """Rich progress bars on a terminal; one line per epoch otherwise (the launcher's stdout.log)."""

    def __init__(self, cfg):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.console = Console(stderr=True)
        self.live = self.console.is_terminal
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeRemainingColumn(), TextColumn("{task.fields[info]}"), console=self.console,
                                 disable=not self.live)
        self.epochs = cfg.search.epochs
        self.run_task = self.epoch_task = None
        self.epoch = -1

    def __enter__(self):
        self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        self.progress.__exit__(*exc)

    def stage(self, name: str) -> None:
        if self.epoch >= 0 and self.run_task is not None:
            self.progress.update(self.run_task, completed=self.epoch + 1)
            if not self.live:
                print(f"search epoch {self.epoch + 1}/{self.epochs} done", flush=True)
            self.epoch, self.run_task = -1, None
        self.console.print(f"[bold]stage[/bold] {name}") if self.live else print(f"stage {name}", flush=True)

    def step(self, info: dict) -> None:
        if self.run_task is None:
            self.run_task = self.progress.add_task("search", total=self.epochs, completed=info["epoch"], info="")
        if info["epoch"] != self.epoch:
            if self.epoch >= 0:
                self.progress.update(self.run_task, completed=info["epoch"])
                if not self.live:
                    print(f"search epoch {self.epoch + 1}/{self.epochs} done", flush=True)
            self.epoch = info["epoch"]
            if self.epoch_task is not None:
                self.progress.remove_task(self.epoch_task)
            self.epoch_task = self.progress.add_task(f"epoch {self.epoch + 1}", total=info["batches"], info="")
        self.progress.update(self.epoch_task, completed=info["batch"], info=f"loss {info['loss']:.4f}")


def search_cmd(
    experiment: Path = typer.Argument(..., help="Experiment YAML (the schema of nas_core.config)."),
    run_dir: Path = typer.Option(..., "--run-dir", help="The run directory (docs/run-directory.md): event log, checkpoints, genotype, metrics."),
    resume: bool = typer.Option(False, "--resume", help="Continue from checkpoints/last.pt and skip finished stages."),
    stage: str = typer.Option(None, "--stage", help="Run only this stage: search, decode, retrain or evaluate."),
    deterministic: bool = typer.Option(False, "--deterministic", help="torch.use_deterministic_algorithms: bitwise resumable on CPU."),
    threads: int = typer.Option(None, "--threads", min=1, help="torch threads (fixed, for reproducible CPU runs)."),
    device: str = typer.Option(None, "--device", help="cpu, cuda or cuda:N (default: cuda if available)."),
) -> None:
    """Run a search: search -> decode -> retrain -> evaluate (a discrete one's trials stand for search and decode;
    a retrain run, `run: {kind: retrain}` in the file, only retrains and evaluates its given genotype; a
    hand-designed baseline, `run: {kind: baseline, network: {...}}`, only retrains and evaluates that network)."""
    from nas_core.config import DISCRETE_METHODS, ConfigError
    from nas_core.rundir import STAGES, RunDir, RunDirBusy

    rd = RunDir(run_dir.resolve())
    experiment = experiment if experiment.is_absolute() else Path.cwd() / experiment
    try:
        cfg, run = _load(experiment)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        _fail_event(rd, str(exc))
        raise typer.Exit(2)
    stage = stage or run.stage
    if stage is not None and stage not in STAGES:
        typer.echo(f"error: --stage {stage!r}: use one of {', '.join(STAGES)}", err=True)
        raise typer.Exit(2)
    _settle_determinism(deterministic, threads)
    rd.root.mkdir(parents=True, exist_ok=True)
    try:
        if run.kind == "retrain":
            code = _retrain(cfg, run, rd, resume, stage, device)
        elif run.network is not None:
            code = _hand_designed(cfg, run, rd, resume, stage, device)
        elif cfg.search.method in DISCRETE_METHODS:
            code = _discrete(cfg, rd, resume, stage, device)
        else:
            code = _continuous(cfg, rd, resume, stage, device)
    except RunDirBusy as exc:  # a second writer: it leaves the run directory exactly as it found it
        typer.echo(f"error: {exc}", err=True)
        code = 2
    raise typer.Exit(code)


def _continuous(cfg, rd, resume: bool, stage: str | None, device: str | None) -> int:
    from nas_core.rundir import RunLock
    from nas_core.search.reporting import EventSink
    from nas_core.search.stages import last_event_seq, run_stages

    if not resume and stage in (None, "search") and rd.checkpoint.exists():
        typer.echo(f"error: {rd.checkpoint} exists: this run directory holds a run already; "
                   "pass --resume to continue it, or use a new --run-dir", err=True)
        return 2
    try:
        # Resuming, every event past the checkpoint's seq is history the repeated work must not write again.
        after = (last_event_seq(rd.root) or 0) if resume else None
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        return 2
    engine = _engine(cfg, rd.root)
    if engine is not None and not engine.is_main:
        # Only rank 0 writes events and checkpoints; the others compute their shards and report through it.
        try:
            from nas_core.search.reporting import NullSink

            run_stages(cfg, rd.root, NullSink(), resume=resume, only=stage, device=device or _rank_device(engine),
                       engine=engine)
        finally:
            engine.shutdown()
        return 0
    try:
        with RunLock(rd.lock), EventSink(rd.events, after_seq=after) as events, _Bars(cfg) as bars:
            return _finish(events, stage, rd.root, lambda: run_stages(
                cfg, rd.root, events, resume=resume, only=stage, on_step=bars.step, on_stage=bars.stage,
                device=device or _rank_device(engine), engine=engine))
    finally:
        if engine is not None:
            engine.shutdown()


def _retrain(cfg, run, rd, resume: bool, stage: str | None, device: str | None) -> int:
    """A retrain run: the genotype it was given (its parent's, or one from the launch body) goes to genotype.json,
    then the retrain and evaluate stages, in its own run directory. The search stage never runs."""
    from nas_core.events import EventKind
    from nas_core.rundir import RunLock, write_json
    from nas_core.search.reporting import EventSink, param_free_share
    from nas_core.search.stages import run_stages, stage_done

    if stage in ("search", "decode"):
        typer.echo(f"error: --stage {stage}: a retrain run has no {stage} stage (its genotype is given); "
                   "use retrain or evaluate", err=True)
        return 2
    with RunLock(rd.lock):
        if not rd.genotype.exists():
            error = _check_genotype(run.genotype)
            if error:
                typer.echo(f"error: {error}", err=True)
                _fail_event(rd, error, locked=True)
                return 2
            write_json(rd.genotype, run.genotype)
        genotype = json.loads(rd.genotype.read_text())
        # Resuming, everything in the log is history: a repeated retrain epoch is not written twice.
        with EventSink(rd.events, after_seq=0 if resume else None) as events:
            events.emit(EventKind.genotype, {"stage": "retrain", "epoch": -1, "genotype": genotype,
                                             "parent_run_id": run.parent_run_id,
                                             "param_free_share": param_free_share(genotype)})

            def work():
                for name in [stage] if stage else ["retrain", "evaluate"]:
                    if not (resume and stage is None and stage_done(rd.root, name, cfg)):
                        run_stages(cfg, rd.root, events, resume=resume, only=name, device=device)

            return _finish(events, stage, rd.root, work)


def _hand_designed(cfg, run, rd, resume: bool, stage: str | None, device: str | None) -> int:
    """A hand-designed baseline: the retrain and evaluate stages on `run.network` (nas_core.models), built in the
    experiment's space (in_channels, num_classes) with its seed, data and retrain budget, the same code that
    trains and scores a searched network. No search, no decode, no genotype.json."""
    from nas_core.events import EventKind
    from nas_core.rundir import RunLock
    from nas_core.search.reporting import EventSink
    from nas_core.search.stages import run_stages, stage_done

    if run.kind != "baseline":
        error = (f"run.network: only a baseline run trains a hand-designed network; set run.kind to baseline "
                 f"(it is {run.kind}) or remove run.network")
        typer.echo(f"error: {error}", err=True)
        _fail_event(rd, error)
        return 2
    if stage in ("search", "decode"):
        typer.echo(f"error: --stage {stage}: a hand-designed baseline has no {stage} stage (its network is given); "
                   "use retrain or evaluate", err=True)
        return 2
    if not resume and stage in (None, "retrain") and rd.retrained.exists():
        typer.echo(f"error: {rd.retrained} exists: this run directory holds a run already; pass --resume to "
                   "continue it, or use a new --run-dir", err=True)
        return 2
    net = run.network
    with RunLock(rd.lock):
        # Resuming, everything in the log is history: a repeated retrain epoch is not written twice.
        with EventSink(rd.events, after_seq=0 if resume else None) as events:
            of = f" of run {run.baseline_of}" if run.baseline_of else ""
            events.emit(EventKind.log, {"stage": "retrain", "message": f"hand-designed baseline {net.label}{of}: "
                                        "the retrain and evaluate stages only (no search, no genotype)"})

            def work():
                for name in [stage] if stage else ["retrain", "evaluate"]:
                    if not (resume and stage is None and stage_done(rd.root, name, cfg)):
                        run_stages(cfg, rd.root, events, resume=resume, only=name, device=device, network=net)

            return _finish(events, stage, rd.root, work)


def _check_genotype(genotype) -> str | None:
    """Why `run.genotype` cannot be retrained, or None."""
    if genotype is None:
        return ("run.genotype: a retrain run needs the genotype to retrain (the parent run's genotype.json, or one "
                "given at launch); the run directory has no genotype.json either")
    from nas_core.space import Genotype

    try:
        Genotype.from_dict(genotype)
    except (ValueError, KeyError, TypeError) as exc:
        return f"run.genotype: not a genotype ({exc}); give the `genotype.json` of a finished search"
    return None


def _finish(events, stage: str | None, run_dir: Path, work) -> int:
    """Run `work` and end the event log with the run's own word on how it went (the watcher reads it)."""
    from nas_core.events import EventKind, StatusState
    from nas_core.search.stages import StageError

    try:
        work()
    except (StageError, ValueError, FileNotFoundError, FloatingPointError) as exc:
        events.emit(EventKind.status, {"state": StatusState.failed, "stage": stage, "error": str(exc)})
        typer.echo(f"error: {exc}", err=True)
        return 1
    except Exception as exc:  # any failure, with its traceback on stderr for the user
        events.emit(EventKind.status, {"state": StatusState.failed, "stage": stage, "error": f"{type(exc).__name__}: {exc}"})
        traceback.print_exc()
        return 1
    events.emit(EventKind.status, {"state": StatusState.succeeded, "stage": stage})
    typer.echo(f"{run_dir}: done")
    return 0


def _engine(cfg, run_dir: Path):
    """The data-parallel engine of `distributed.engine` when the launcher started several ranks, else None."""
    if cfg.distributed.engine == "none":
        return None
    from nas_core.distributed import create_engine

    engine = create_engine(cfg.distributed.engine, cfg.distributed.timeout_s)
    if engine.world_size == 1:
        engine.shutdown()
        return None
    from nas_core.rundir import RunDir

    engine.watch(RunDir(run_dir).ranks, cfg.distributed.timeout_s)
    return engine


def _rank_device(engine):
    if engine is None:
        return None
    from nas_core.distributed import device_for

    return device_for(engine.place)


def _discrete(cfg, rd, resume: bool, stage: str | None, device: str | None) -> int:
    """Random, evolution and REINFORCE: the trials run through nas_core.discrete, the best candidate becomes
    genotype.json, then the same retrain and evaluate stages as a continuous run's decoded cell, so a random
    baseline's test IoU is measured by the searched cell's protocol.

    One process runs its trials on a local trial process; under `mpirun -np N` or `srun -n N` the trials run on
    the MPI orchestrator in place: rank 0 holds the strategy, the lock and the only pen (events, checkpoint,
    genotype.json, then retrain and evaluate), ranks 1..N-1 train candidates and exit once stopped."""
    from nas_core.discrete.orchestrator import OrchestratorError, stop_workers, world
    from nas_core.rundir import RunDirBusy, RunLock

    try:
        comm = world()
    except OrchestratorError as exc:
        typer.echo(f"error: {exc}", err=True)
        return 2
    if comm is not None and comm.rank != 0:
        return _trial_worker(cfg, rd, comm)
    lock = RunLock(rd.lock)
    try:
        lock.acquire()
    except RunDirBusy:
        if comm is not None:
            stop_workers(comm)
        raise
    try:
        return _discrete_stages(cfg, rd, resume, stage, device, comm)
    finally:
        lock.release()


def _discrete_stages(cfg, rd, resume: bool, stage: str | None, device: str | None, comm) -> int:
    """Rank 0 (or the one process) of a discrete search, holding the run directory's lock."""
    from nas_core.discrete.orchestrator import stop_workers
    from nas_core.search.reporting import EventSink
    from nas_core.search.stages import run_stages, stage_done

    # The trials are this method's search and decode; a resumed run whose genotype.json exists has done them.
    if stage in (None, "search", "decode") and not (resume and stage is None and rd.genotype.exists()):
        code = _discrete_trials(cfg, rd, comm)
    else:
        code = 0
        if comm is not None:
            stop_workers(comm)
    if comm is not None:
        _leave_world()
    if code:
        return code
    later = [s for s in ("retrain", "evaluate") if stage == s or (stage is None and cfg.retrain.enabled)]
    # Resuming, retrain events a killed attempt wrote after the genotype are history not to be written again.
    after = _decode_seq(rd) if resume else None
    with EventSink(rd.events, after_seq=after) as events:
        def work():
            for name in later:
                if not (resume and stage is None and stage_done(rd.root, name, cfg)):
                    run_stages(cfg, rd.root, events, resume=resume, only=name, device=device)

        return _finish(events, stage, rd.root, work)


def _discrete_trials(cfg, rd, comm=None) -> int:
    """Run (or resume, from its checkpoint.json) the trials, then write the best candidate to genotype.json.
    `comm`: the MPI world whose ranks 1..N-1 train (this process is rank 0), or None for one local trial process."""
    from nas_core.discrete import SearchJob, run_search
    from nas_core.discrete.orchestrator import dispatch, stop_workers
    from nas_core.events import EventKind, EventLog, StatusState
    from nas_core.rundir import write_json
    from nas_core.search.reporting import param_free_share

    try:
        job = SearchJob.from_experiment(cfg, rd.root, **_trial_gpus(cfg))
    except Exception as exc:
        typer.echo(f"error: {exc}", err=True)
        _fail_event(rd, str(exc), locked=True)
        if comm is not None:
            stop_workers(comm)
        return 2
    try:
        summary = run_search(job, workers=1) if comm is None else dispatch(comm, job)
    except Exception as exc:  # the scheduler has written the failed status event already
        typer.echo(f"error: {exc}", err=True)
        return 1
    write_json(rd.summary, summary)
    best = summary.get("best_genotype")
    with EventLog(rd.events) as log:
        if best is None:
            error = (f"no candidate trained: all {summary['trials']} trials failed; their logs are in {rd.trials}")
            log.append(EventKind.status, {"state": StatusState.failed, "stage": "search", "error": error})
            typer.echo(f"error: {error}", err=True)
            return 1
        write_json(rd.genotype, best)
        log.append(EventKind.genotype, {"stage": "decode", "epoch": -1, "trial": summary["best_trial"],
                                        "val_iou": summary["best_iou"], "compute_s": summary["compute_s"],
                                        "genotype": best, "param_free_share": param_free_share(best)})
    return 0


def _trial_worker(cfg, rd, comm) -> int:
    """Ranks 1..N-1 of a discrete search: train the trials rank 0 sends, write nothing of the run's own, exit 0
    once stopped (rank 0 alone goes on to retrain and evaluate)."""
    from nas_core.discrete import SearchJob
    from nas_core.discrete.orchestrator import TAG_STOP, work

    try:
        job = SearchJob.from_experiment(cfg, rd.root, **_trial_gpus(cfg))
    except Exception:  # rank 0 builds the same job, says why and stops the workers; this rank waits for that
        job = None
    if job is None:
        comm.recv(source=0, tag=TAG_STOP)
    else:
        work(comm, job)
    _leave_world()
    return 0


def _trial_gpus(cfg) -> dict:
    """A trial worker's GPU is its local rank modulo the GPUs of its node: SLURM's request, or those visible here."""
    if cfg.launcher.slurm.gpus_per_node:
        return {}
    import torch

    return {"gpus_per_node": torch.cuda.device_count()} if torch.cuda.is_available() else {}


def _leave_world() -> None:
    # Every rank leaves MPI as soon as the trials end: the trial workers exit at once instead of waiting in
    # MPI_Finalize for rank 0's retrain and evaluate.
    from mpi4py import MPI

    if not MPI.Is_finalized():
        MPI.Finalize()


def _decode_seq(rd) -> int | None:
    """The seq of the last decode `genotype` event: what came after it belongs to the retrain and evaluate."""
    from nas_core.events import EventKind, read_events

    seq = None
    if rd.events.exists():
        for _, event in read_events(rd.events):
            if event["kind"] == EventKind.genotype and (event.get("payload") or {}).get("stage") == "decode":
                seq = event["seq"]
    return seq


def _fail_event(rd, error: str, locked: bool = False) -> None:
    """Tell the watcher why a launched run stopped before it began, if the run directory is writable and no
    other search writes it (`locked`: this process holds the run's lock already)."""
    from nas_core.events import EventKind, EventLog, StatusState
    from nas_core.rundir import RunDirBusy, RunLock

    from nas_core.distributed.env import placement

    # Of several ranks that all failed the same way (a bad config under mpirun), rank 0 alone says so.
    if not rd.root.is_dir() or not placement().is_main:
        return
    try:
        lock = None if locked else RunLock(rd.lock).acquire()
        try:
            with EventLog(rd.events) as log:
                log.append(EventKind.status, {"state": StatusState.failed, "error": error})
        finally:
            if lock is not None:
                lock.release()
    except (OSError, RunDirBusy):
        pass


def register(app: typer.Typer) -> None:
    app.command("search")(search_cmd)
