"""`nasforge search EXPERIMENT.yaml --run-dir DIR [--resume] [--stage NAME]`: one run, as the worker launches it
(docs/run-directory.md), or by hand with progress bars."""
from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path

import typer

RUN_KEYS = ("stage",)


def _load(path: Path):
    """The experiment and the `run:` overrides the worker adds beside it (only `stage` is read here)."""
    from nas_core.config import ConfigError, parse_experiment, read_experiment_file

    data = read_experiment_file(path)
    run = data.pop("run", None) or {}
    if not isinstance(run, dict):
        raise ConfigError(f"{path}: run: must be a mapping of overrides such as `stage: retrain`")
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
    run_dir: Path = typer.Option(..., "--run-dir", help="The run directory: events.jsonl, checkpoints/, genotype.json, metrics.json."),
    resume: bool = typer.Option(False, "--resume", help="Continue from checkpoints/last.pt and skip finished stages."),
    stage: str = typer.Option(None, "--stage", help="Run only this stage: search, decode, retrain or evaluate."),
    deterministic: bool = typer.Option(False, "--deterministic", help="torch.use_deterministic_algorithms: bitwise resumable on CPU."),
    threads: int = typer.Option(None, "--threads", min=1, help="torch threads (fixed, for reproducible CPU runs)."),
    device: str = typer.Option(None, "--device", help="cpu, cuda or cuda:N (default: cuda if available)."),
) -> None:
    """Run a search: search -> decode -> retrain -> evaluate (a discrete one's trials stand for search and decode)."""
    from nas_core.config import ConfigError

    run_dir = run_dir.resolve()
    experiment = experiment if experiment.is_absolute() else Path.cwd() / experiment
    try:
        cfg, run = _load(experiment)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        _fail_event(run_dir, str(exc))
        raise typer.Exit(2)
    stage = stage or run.get("stage")
    _settle_determinism(deterministic, threads)
    if cfg.search.method not in ("darts", "pcdarts", "gaea"):
        raise typer.Exit(_discrete(cfg, run_dir, resume, stage, device))
    raise typer.Exit(_continuous(cfg, run_dir, resume, stage, device))


def _continuous(cfg, run_dir: Path, resume: bool, stage: str | None, device: str | None) -> int:
    from nas_core.search.reporting import EventSink
    from nas_core.search.stages import CHECKPOINT, last_event_seq, run_stages

    run_dir.mkdir(parents=True, exist_ok=True)
    if not resume and stage in (None, "search") and (run_dir / CHECKPOINT).exists():
        typer.echo(f"error: {run_dir / CHECKPOINT} exists: this run directory holds a run already; "
                   "pass --resume to continue it, or use a new --run-dir", err=True)
        return 2
    try:
        # Resuming, every event past the checkpoint's seq is history the repeated work must not write again.
        after = (last_event_seq(run_dir) or 0) if resume else None
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        return 2
    engine = _engine(cfg, run_dir)
    if engine is not None and not engine.is_main:
        # Only rank 0 writes events and checkpoints; the others compute their shards and report through it.
        try:
            from nas_core.search.reporting import NullSink

            run_stages(cfg, run_dir, NullSink(), resume=resume, only=stage, device=device or _rank_device(engine),
                       engine=engine)
        finally:
            engine.shutdown()
        return 0
    with EventSink(run_dir / "events.jsonl", after_seq=after) as events, _Bars(cfg) as bars:
        try:
            return _finish(events, stage, run_dir, lambda: run_stages(
                cfg, run_dir, events, resume=resume, only=stage, on_step=bars.step, on_stage=bars.stage,
                device=device or _rank_device(engine), engine=engine))
        finally:
            if engine is not None:
                engine.shutdown()


def _finish(events, stage: str | None, run_dir: Path, work) -> int:
    """Run `work` and end the event log with the run's own word on how it went (the watcher reads it)."""
    from nas_core.search.stages import StageError

    try:
        work()
    except (StageError, ValueError, FileNotFoundError, FloatingPointError) as exc:
        events.emit("status", {"state": "failed", "stage": stage, "error": str(exc)})
        typer.echo(f"error: {exc}", err=True)
        return 1
    except Exception as exc:  # any failure, with its traceback on stderr for the user
        events.emit("status", {"state": "failed", "stage": stage, "error": f"{type(exc).__name__}: {exc}"})
        traceback.print_exc()
        return 1
    events.emit("status", {"state": "succeeded", "stage": stage})
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
    engine.watch(run_dir / "ranks", cfg.distributed.timeout_s)
    return engine


def _rank_device(engine):
    if engine is None:
        return None
    from nas_core.distributed import device_for

    return device_for(engine.place)


def _discrete(cfg, run_dir: Path, resume: bool, stage: str | None, device: str | None) -> int:
    """Random, evolution and REINFORCE: the trials run through nas_core.discrete (a local trial pool), the best
    candidate becomes genotype.json, then the same retrain and evaluate stages as a continuous run's decoded cell,
    so a random baseline's test IoU is measured by the searched cell's protocol."""
    from nas_core.search.reporting import EventSink
    from nas_core.search.stages import GENOTYPE, STAGES, run_stages, stage_done

    if stage is not None and stage not in STAGES:
        typer.echo(f"error: --stage {stage!r}: use one of {', '.join(STAGES)}", err=True)
        return 2
    run_dir.mkdir(parents=True, exist_ok=True)
    # The trials are this method's search and decode; a resumed run whose genotype.json exists has done them.
    if stage in (None, "search", "decode") and not (resume and stage is None and (run_dir / GENOTYPE).exists()):
        code = _discrete_trials(cfg, run_dir)
        if code:
            return code
    later = [s for s in ("retrain", "evaluate") if stage == s or (stage is None and cfg.retrain.enabled)]
    # Resuming, retrain events a killed attempt wrote after the genotype are history not to be written again.
    after = _decode_seq(run_dir) if resume else None
    with EventSink(run_dir / "events.jsonl", after_seq=after) as events:
        def work():
            for name in later:
                if not (resume and stage is None and stage_done(run_dir, name, cfg)):
                    run_stages(cfg, run_dir, events, resume=resume, only=name, device=device)

        return _finish(events, stage, run_dir, work)


def _discrete_trials(cfg, run_dir: Path) -> int:
    """Run (or resume, from its checkpoint.json) the trials, then write the best candidate to genotype.json."""
    from nas_core.discrete import SearchJob, run_search
    from nas_core.events import EventLog
    from nas_core.search.reporting import param_free_share
    from nas_core.search.stages import GENOTYPE, write_json_atomic

    try:
        job = SearchJob.from_experiment(cfg, run_dir)
    except Exception as exc:
        typer.echo(f"error: {exc}", err=True)
        _fail_event(run_dir, str(exc))
        return 2
    try:
        summary = run_search(job, workers=1)
    except Exception as exc:  # the scheduler has written the failed status event already
        typer.echo(f"error: {exc}", err=True)
        return 1
    best = summary.get("best_genotype")
    with EventLog(run_dir / "events.jsonl") as log:
        if best is None:
            error = (f"no candidate trained: all {summary['trials']} trials failed; their logs are in "
                     f"{run_dir / 'trials'}")
            log.append("status", {"state": "failed", "stage": "search", "error": error})
            typer.echo(f"error: {error}", err=True)
            return 1
        write_json_atomic(run_dir / GENOTYPE, best)
        log.append("genotype", {"stage": "decode", "epoch": -1, "trial": summary["best_trial"],
                                "val_iou": summary["best_iou"], "compute_s": summary["compute_s"],
                                "genotype": best, "param_free_share": param_free_share(best)})
    return 0


def _decode_seq(run_dir: Path) -> int | None:
    """The seq of the last decode `genotype` event: what came after it belongs to the retrain and evaluate."""
    from nas_core.events import read_events

    seq = None
    path = run_dir / "events.jsonl"
    if path.exists():
        for _, event in read_events(path):
            if event["kind"] == "genotype" and (event.get("payload") or {}).get("stage") == "decode":
                seq = event["seq"]
    return seq


def _fail_event(run_dir: Path, error: str) -> None:
    """Tell the watcher why a launched run stopped before it began, if the run directory is writable."""
    from nas_core.events import EventLog

    try:
        if run_dir.is_dir():
            with EventLog(run_dir / "events.jsonl") as log:
                log.append("status", {"state": "failed", "error": error})
    except OSError:
        pass


def register(app: typer.Typer) -> None:
    app.command("search")(search_cmd)
