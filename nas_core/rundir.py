"""The run directory: the one contract between compute (which writes it) and the platform (which reads it).

Every tier goes through this module for a run's paths, its records and its one atomic write, so a file name is
spelled once (docs/run-directory.md is checked against `LAYOUT` by a test). Guarantees:
- `write_atomic` leaves the old file or the new one, never a half: temp file in the same folder, fsync of the
  file, rename, fsync of the folder (so the rename itself survives a power cut).
- `RunLock` admits one writer per run directory (flock, released by the kernel when the owner dies).
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from nas_core.config import read_experiment_file  # the one YAML reader; its errors name the file
from nas_core.models.hand_designed import NetworkConfig

# The stages of a run, in order; a discrete search's trials stand for search and decode.
STAGES = ("search", "decode", "retrain", "evaluate")
Stage = Literal[STAGES]
# What a run is: a search, a random baseline of one, or the retraining of a genotype (a parent's or given).
RUN_KINDS = ("search", "baseline", "retrain")
RunKind = Literal[RUN_KINDS]

# Every file and folder of a run directory: (attribute, relative path, writer, what it holds).
LAYOUT: tuple[tuple[str, str, str, str], ...] = (
    ("config", "config.yaml", "the worker, before launch",
     "the experiment (`nas_core.config.ExperimentConfig`) plus `run:` overrides (`RunOverrides`)"),
    ("events", "events.jsonl", "the search (one writer: rank 0)",
     "the event log, one JSON object per line, `seq` 1, 2, 3... (`nas_core.events`, docs/events.md)"),
    ("lock", "run.lock", "the search", "the last owner: pid, host, start time (`RunLock`); flock'd while the search runs, "
     "the file stays after"),
    ("checkpoint", "checkpoints/last.pt", "the search stage, every epoch",
     "weights, alpha/beta, optimisers, schedulers, RNG states, epoch, step, event seq"),
    ("retrained", "checkpoints/retrain.pt", "the retrain stage", "the retrained network's weights (retrain done)"),
    ("genotype", "genotype.json", "the decode stage, or a discrete search's trials",
     "the decoded genotype (`Genotype.to_dict()`); a discrete search: its best candidate; a retrain run: its input"),
    ("metrics", "metrics.json", "the evaluate stage", "final test metrics (evaluate done)"),
    ("samples", "samples", "the evaluate stage", "a few test tiles predicted: `sample-<i>.png` (image, truth, "
     "prediction, errors: true positives green, false positives red, false negatives blue) and `index.json`"),
    ("evaluations", "evaluations", "`nasforge evaluate` (holding the run's lock)",
     "metrics on other prepared datasets, `<dataset>.json` each; metrics.json stays the run's own test split"),
    ("job", "job.json", "a discrete search", "its `SearchJob`, read by every MPI rank"),
    ("trials_checkpoint", "checkpoint.json", "a discrete search, after each trial", "issued and finished trials"),
    ("summary", "summary.json", "a discrete search, at its end", "trials, best candidate, compute, busy fraction"),
    ("trials", "trials", "a discrete search's trial workers", "one log per trial attempt"),
    ("ranks", "ranks", "every rank of a data-parallel search", "per-rank step files for the rank watchdog"),
    ("stdout", "stdout.log", "the launcher", "the job's standard output"),
    ("stderr", "stderr.log", "the launcher", "the job's standard error"),
    ("sbatch", "job.sbatch", "the SLURM launcher", "the rendered batch script, for the user to read"),
    ("launch_record", "launch.json", "the worker, at submit", "`LaunchRecord`: job handle and the attempt it began"),
    ("local_record", "local.json", "the local launcher", "`LocalRecord`: the process group leader and its argv"),
    ("exit_record", "exit.json", "the local run's group leader", "`ExitRecord`: how the search process ended"),
    ("sensitivity", "sensitivity.json", "`nasforge sensitivity --run-dir` (holding the run's lock)",
     "where to search first: each named block's ablation drop, random-cell gain, importance, score and rank "
     "(`nas_core.sensitivity`)"),
    ("sensitivity_log", "sensitivity.log", "the worker's sensitivity task (the run page's 'Where to search first')",
     "the output of the `nasforge sensitivity --run-dir` it ran: the per-block lines, or its error"),
    ("exports", "exports", "the API's export route (GET /api/runs/{id}/export), once per format",
     "`exports/onnx`, `exports/torchscript`: the exported model and its card (`nas_core.inference.export_model`)"),
)
# The file whose presence says a stage is done (the search stage: its checkpoint reached the last epoch).
STAGE_OUTPUT = {"search": "checkpoint", "decode": "genotype", "retrain": "retrained", "evaluate": "metrics"}


class RunDir:
    """The paths of one run directory, as attributes named in `LAYOUT` (`RunDir(p).events`, `.genotype`...)."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        for name, rel, _, _ in LAYOUT:
            setattr(self, name, self.root / rel)

    def __repr__(self) -> str:
        return f"RunDir({str(self.root)!r})"

    def stage_output(self, stage: str) -> Path:
        return getattr(self, STAGE_OUTPUT[stage])

    def trial_log(self, trial: int, attempt: int) -> Path:
        return self.trials / f"trial-{trial}-{attempt}.log"

    def read_overrides(self) -> "RunOverrides":
        return read_config(self.config)[1]


# Type hints for the attributes set from LAYOUT (so editors and readers see them).
for _name, *_ in LAYOUT:
    RunDir.__annotations__[_name] = "Path"


# ------------------------------------------------------------------------------------------- atomic writes


def write_atomic(path: str | os.PathLike, data: bytes | str | Callable[[Any], None], durable: bool = True) -> None:
    """Replace `path` with `data` (bytes, text, or a function writing to a binary file) so that a reader or a
    kill at any moment sees the old content or the new, never a part.

    `durable=False` skips the fsyncs: still atomic for readers and kills, not across a power cut (for liveness
    files rewritten every step, where the next write supersedes a lost one)."""
    with atomic_path(path, durable) as tmp:
        with open(tmp, "wb") as fh:
            if callable(data):
                data(fh)
            else:
                fh.write(data.encode() if isinstance(data, str) else data)


@contextmanager
def atomic_path(path: str | os.PathLike, durable: bool = True) -> Iterator[Path]:
    """A temp path beside `path` for a writer that needs a file name (GDAL's rasters): when the block ends
    without error the file replaces `path` as `write_atomic` does (fsync, rename, fsync of the folder); else it is
    removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Unique per process and thread: two writers of one file never share a temp file.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        yield tmp
        if durable:
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        _fsync_dir(path.parent)


def write_json(path: str | os.PathLike, data: Any, indent: int | None = 2, durable: bool = True) -> None:
    """`data` as JSON (no NaN: the event format and the API forbid it), written atomically."""
    text = json.dumps(data, indent=indent, allow_nan=False, separators=None if indent else (",", ":"))
    write_atomic(path, text + "\n", durable=durable)


def read_json(path: str | os.PathLike, default: Any = None) -> Any:
    """The JSON in `path`, or `default` when it does not exist (a partial file cannot exist: see write_atomic)."""
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        return default


def replace_folder(tmp: str | os.PathLike, final: str | os.PathLike) -> None:
    """Put the finished folder `tmp` at its sibling `final`, replacing what was there: a reader finds the old
    folder or the new one (for an instant neither), never a mix. A folder cannot be renamed over a full one, so
    the old one is moved aside first, then removed. OSError when another writer put its own `final` in between."""
    tmp, final = Path(tmp), Path(final)
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}-{threading.get_ident()}")
        os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, final)
    _fsync_dir(final.parent)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some filesystems cannot fsync a directory; the rename is then as durable as they make it
        pass
    finally:
        os.close(fd)


# ------------------------------------------------------------------------------------------------ records


class _Record(BaseModel):
    model_config = ConfigDict(extra="ignore")

    def write(self, path: str | os.PathLike) -> None:
        write_json(path, self.model_dump(mode="json"), indent=None)

    @classmethod
    def read(cls, path: str | os.PathLike):
        """The record in `path`, or None when there is none or it is not one."""
        try:
            return cls.model_validate_json(Path(path).read_bytes())
        except (OSError, ValidationError, ValueError):
            return None


class LaunchRecord(_Record):
    """Written by the worker at each submit: SLURM counts its own requeues of a job from 0, so the attempt this job
    began at turns them into the run's attempt."""

    handle: str
    attempt: int = Field(1, ge=1)


class LocalRecord(_Record):
    """The local launcher's process group leader (its pid is the group id) and what it runs."""

    pid: int
    argv: list[str]
    resume: bool = False


class ExitRecord(_Record):
    """How a local run's search process ended; a restarted worker, no longer its parent, learns it from here."""

    pid: int
    returncode: int
    signal: int | None = None
    # The signal the runner's group received before the search ended (a cancel, or `make run` stopping): the run
    # was stopped from outside whatever its exit code says (mpirun exits 1 on SIGTERM).
    interrupted_by: int | None = None


# -------------------------------------------------------------------------------------------- overrides


class RunOverrides(BaseModel):
    """The `run:` mapping of config.yaml: what makes this run differ from its experiment."""

    model_config = ConfigDict(extra="forbid")
    kind: RunKind = "search"
    stage: Stage | None = Field(None, description="Run only this stage.")
    parent_run_id: int | None = Field(None, ge=1, description="A retrain run: the run whose genotype it retrains.")
    genotype: dict[str, Any] | None = Field(None, description="A retrain run: the genotype to retrain "
                                                              "(`Genotype.to_dict()`), the parent's or one given.")
    baseline_of: int | None = Field(None, ge=1, description="A baseline: the search run it is measured against.")
    network: NetworkConfig | None = Field(None, description="A hand-designed baseline: the network it trains and "
                                          "evaluates (no search, no decode) instead of a random search.")


def read_config(path: str | os.PathLike) -> tuple[dict[str, Any], RunOverrides]:
    """The experiment mapping of config.yaml and its `run:` overrides; ValueError names the file and the field."""
    path = Path(path)
    data = read_experiment_file(path)
    run = data.pop("run", None) or {}
    try:
        overrides = RunOverrides.model_validate(run)
    except ValidationError as exc:
        fields = "; ".join(f"run.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ValueError(f"{path}: {fields}") from None
    return data, overrides


def write_config(path: str | os.PathLike, experiment: dict[str, Any], overrides: RunOverrides | None = None) -> None:
    """config.yaml for a launch: the experiment as stored, and the overrides that are not defaults."""
    data = dict(experiment)
    data.pop("run", None)
    run = (overrides or RunOverrides()).model_dump(mode="json", exclude_defaults=True)
    if run:
        data["run"] = run
    write_atomic(path, yaml.safe_dump(data, sort_keys=False))


# ------------------------------------------------------------------------------------------------- lock


class RunDirBusy(RuntimeError):
    """Another live process writes this run directory."""


class RunLock:
    """One writer per run directory: `with RunLock(rd.lock): ...` or RunDirBusy naming the owner.

    flock, not a bare O_EXCL file: the kernel drops the lock when its owner dies (kill -9 included), so a
    resumed run never has to guess whether a leftover lock file is stale.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._fd: int | None = None

    def acquire(self) -> "RunLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            raise RunDirBusy(f"{self.path.parent}: another search is writing this run directory "
                             f"({self.owner() or 'owner unknown'}); wait for it to end, cancel it, or use a new "
                             "--run-dir") from None
        owner = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()})
        os.ftruncate(fd, 0)
        os.pwrite(fd, owner.encode(), 0)
        self._fd = fd
        return self

    def owner(self) -> str | None:
        try:
            info = json.loads(self.path.read_text())
            return f"pid {info['pid']} on {info['host']}"
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock; the file stays (unlinking it would race a new owner)
            self._fd = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
