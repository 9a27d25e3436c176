"""SLURM launcher: renders deploy/slurm/job.sbatch, submits with `sbatch --parsable`, reads squeue/scontrol, scancels.

Every value from a form passed the pydantic patterns of `SlurmConfig`; here it is checked again and quoted,
and the tools are called with argument lists, never through a shell.
"""
from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from nas_core.config import DISCRETE_METHODS, SlurmConfig
from nas_core.rundir import RunDir, write_atomic
from worker.launchers._base import JobState, Launcher, RunSpec, check_token, job_env, search_argv

TEMPLATE = Path(__file__).resolve().parents[2] / "deploy" / "slurm" / "job.sbatch"
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_MODULE = re.compile(r"^[A-Za-z0-9_.+\-/]{1,128}$")
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")
# squeue lists only jobs still in the queue; these are the states in which a job of the run is alive.
_ALIVE = {"PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "SUSPENDED", "REQUEUED", "REQUEUE_HOLD",
          "REQUEUE_FED", "RESIZING", "SIGNALING", "STAGE_OUT", "STOPPED"}
_AS_PENDING = {"PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "SUSPENDED", "STOPPED"}
_AS_RUNNING = {"RUNNING", "COMPLETING", "RESIZING", "SIGNALING", "STAGE_OUT"}
_AS_FAILED = {"FAILED", "BOOT_FAIL", "DEADLINE", "OUT_OF_MEMORY", "SPECIAL_EXIT"}


class ClusterProfile(BaseModel):
    """What differs between clusters (docs/deploy.md); an admin's file, so `setup` and `sbatch` are used as written."""

    model_config = ConfigDict(extra="forbid")
    defaults: SlurmConfig = Field(default_factory=SlurmConfig)
    modules: list[str] = Field(default_factory=list)
    environment: dict[str, str] = Field(default_factory=dict)
    setup: list[str] = Field(default_factory=list)
    sbatch: list[str] = Field(default_factory=list)
    launch: str = "srun"

    @classmethod
    def load(cls, path: str | os.PathLike | None) -> "ClusterProfile":
        if not path:
            return cls()
        try:
            data = yaml.safe_load(Path(path).read_text()) or {}
            return cls.model_validate(data)
        except OSError as exc:
            raise ValueError(f"NASFORGE_SLURM_PROFILE: cannot read {path}: {exc}") from None
        except (yaml.YAMLError, ValidationError) as exc:
            raise ValueError(f"NASFORGE_SLURM_PROFILE: {path} is not a valid cluster profile: {exc}") from None


class SlurmLauncher(Launcher):
    kind = "slurm"

    def __init__(self, search_command: list[str], env: dict[str, str] | None = None, tool=lambda name: name,
                 template: Path | None = None, profile: ClusterProfile | None = None, timeout_s: float = 60.0):
        self.search_command = list(search_command)
        self.env = dict(env if env is not None else os.environ)
        self.tool = tool
        self.template = Path(template or TEMPLATE)
        self.profile = profile or ClusterProfile()
        self.timeout_s = timeout_s

    # ----------------------------------------------------------------------------------------- rendering

    def render(self, spec: RunSpec) -> str:
        slurm = _merged(self.profile.defaults, spec.launcher.slurm)
        tasks = slurm.nodes * slurm.tasks_per_node
        values = {
            "run_id": str(int(spec.run_id)),
            "sbatch": "\n".join(f"#SBATCH {line}" for line in _sbatch_options(slurm, self.profile.sbatch)),
            "modules": "\n".join(f"module load {shlex.quote(_check(_MODULE, m, 'modules'))}" for m in self.profile.modules),
            "environment": "\n".join(f"export {_check(_ENV_NAME, k, 'environment')}={shlex.quote(str(v))}"
                                     for k, v in {**self.profile.environment, **spec.extra_env,
                                                  "NASFORGE_RUN_ID": str(int(spec.run_id))}.items()),
            "setup": "\n".join(self.profile.setup),
            "run_dir": shlex.quote(str(spec.run_dir)),
            "launch": _launch_line(self.profile.launch, _needs_mpi(spec.config)) if tasks > 1 else "",
            # Always --resume: a requeued job runs this same script again and must continue, not restart.
            "command": shlex.join(search_argv(self.search_command, resume=True)),
        }
        text = self.template.read_text()
        missing = set(_PLACEHOLDER.findall(text)) - set(values)
        if missing:
            raise ValueError(f"{self.template}: unknown placeholder(s) {sorted(missing)}; known: {sorted(values)}")
        return _PLACEHOLDER.sub(lambda m: values[m.group(1)], text)

    # ----------------------------------------------------------------------------------------- scheduler

    def submit(self, spec: RunSpec) -> str:
        rd = RunDir(spec.run_dir)
        script = rd.sbatch
        write_atomic(script, self.render(spec))
        argv = [self.tool("sbatch"), "--parsable", f"--job-name={spec.job_name}", f"--chdir={spec.run_dir}",
                f"--output={rd.stdout}", f"--error={rd.stderr}",
                "--open-mode=append", "--requeue", str(script)]
        # sbatch hands its environment to the job (--export=ALL): without the platform's credentials.
        out = self._run(argv, env=job_env(self.env))
        if out.returncode != 0:
            raise RuntimeError(f"sbatch refused run {spec.run_id}: {out.stderr.strip() or out.stdout.strip()}")
        job_id = out.stdout.strip().split(";")[0]
        if not job_id.isdigit():
            raise RuntimeError(f"sbatch --parsable printed {out.stdout.strip()!r}, not a job id")
        return job_id

    def find(self, spec: RunSpec) -> str | None:
        out = self._run([self.tool("squeue"), "-h", "-n", spec.job_name, "-o", "%i|%T"])
        if out.returncode != 0:
            return None
        alive = [line.split("|")[0] for line in out.stdout.split() if line.split("|")[-1] in _ALIVE]
        return max(alive, key=int) if alive else None

    def snapshot(self) -> dict[str, dict[str, str]]:
        """Every nasforge job SLURM still knows, from one squeue call: what a reconcile sweep reads instead of
        one `scontrol show job` per run (a busy controller should not be polled per job)."""
        fields = "JobID:30|,Name:100|,State:30|,Reason:200|,RestartCnt:10|"
        out = self._run([self.tool("squeue"), "-h", "--me", "--states=all", "-O", fields])
        if out.returncode != 0:
            return {}
        jobs = {}
        for line in out.stdout.splitlines():
            parts = [p.strip() for p in line.split("|")]
            if len(parts) >= 5 and parts[1].startswith("nasforge-run-") and parts[0].isdigit():
                jobs[parts[0]] = {"JobState": parts[2], "Reason": parts[3], "Restarts": parts[4]}
        return jobs

    def state(self, handle: str, spec: RunSpec, known: dict[str, str] | None = None) -> JobState:
        # squeue has no exit code: an ended job is read again, in full, from scontrol.
        job = known if known and known.get("JobState") in _ALIVE else self.show(handle)
        if job is None:
            # Past MinJobAge the controller forgets a job; the run's own event log then says how it ended.
            return JobState("LOST", reason=f"SLURM has no record of job {handle}")
        raw = job.get("JobState", "")
        reason = job.get("Reason", "None")
        reason = "" if reason == "None" else reason
        restarts = int(job.get("Restarts", "0") or 0)
        code, _, sig = job.get("ExitCode", "0:0").partition(":")
        exit_code = int(code) if code.isdigit() else None
        if raw in _AS_PENDING:
            return JobState("PENDING", reason=reason or ("" if raw == "PENDING" else raw), restarts=restarts)
        if raw in _AS_RUNNING:
            return JobState("RUNNING", restarts=restarts)
        if raw in _AS_FAILED:
            detail = f"{raw}: exit code {code}" + (f", signal {sig}" if sig not in ("", "0") else "")
            return JobState("FAILED", reason=detail, restarts=restarts, exit_code=exit_code)
        if raw in {"COMPLETED", "TIMEOUT", "CANCELLED", "PREEMPTED", "NODE_FAIL"}:
            return JobState(raw, reason=reason, restarts=restarts, exit_code=exit_code)
        return JobState("RUNNING", reason=f"unrecognised SLURM state {raw!r}", restarts=restarts)

    def show(self, job_id: str) -> dict[str, str] | None:
        """`scontrol show job -o ID` as a dict; None when SLURM no longer knows the job."""
        out = self._run([self.tool("scontrol"), "show", "job", "-o", str(int(job_id))])
        if out.returncode != 0 or not out.stdout.strip():
            if "Invalid job id" in out.stderr:
                return None
            raise RuntimeError(f"scontrol show job {job_id} failed: {out.stderr.strip()}")
        fields: dict[str, str] = {}
        for token in out.stdout.split():
            key, sep, value = token.partition("=")
            if sep and key not in fields:
                fields[key] = value
        return fields

    def cancel(self, handle: str, spec: RunSpec) -> None:
        out = self._run([self.tool("scancel"), str(int(handle))])
        if out.returncode != 0 and "Invalid job id" not in out.stderr and "already completing" not in out.stderr:
            raise RuntimeError(f"scancel {handle} failed: {out.stderr.strip()}")

    def _run(self, argv: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(argv, env=env or self.env, capture_output=True, text=True, timeout=self.timeout_s)


def _merged(defaults: SlurmConfig, asked: SlurmConfig) -> SlurmConfig:
    # The experiment's own values win; the cluster's defaults fill what it left empty or at the schema default.
    data: dict[str, Any] = {}
    for name, info in SlurmConfig.model_fields.items():
        value = getattr(asked, name)
        data[name] = getattr(defaults, name) if value is None or value == info.default else value
    return SlurmConfig.model_validate(data)


def _sbatch_options(slurm: SlurmConfig, extra: list[str]) -> list[str]:
    opts = [f"--nodes={int(slurm.nodes)}", f"--ntasks-per-node={int(slurm.tasks_per_node)}",
            f"--cpus-per-task={int(slurm.cpus_per_task)}", f"--time={check_token(slurm.time, 'launcher.slurm.time')}"]
    for name in ("partition", "account", "qos", "mem"):
        value = getattr(slurm, name)
        if value is not None:
            opts.append(f"--{name}={check_token(value, f'launcher.slurm.{name}')}")
    if slurm.gpus_per_node:
        opts.append(f"--gpus-per-node={int(slurm.gpus_per_node)}")
    for line in extra:
        if "\n" in line or "\r" in line:
            raise ValueError(f"cluster profile sbatch: {line!r} spans lines; give one option per entry")
        opts.append(line)
    return opts


def _check(pattern: re.Pattern, value: str, what: str) -> str:
    if not pattern.match(str(value)):
        raise ValueError(f"cluster profile {what}: {value!r} is not allowed (pattern {pattern.pattern})")
    return str(value)


def _needs_mpi(cfg) -> bool:
    """Horovod's controller and a discrete search's orchestrator (mpi4py) are MPI programs; DDP is not."""
    return cfg.distributed.engine == "horovod" or cfg.search.method in DISCRETE_METHODS


def _launch_line(launch: str, needs_mpi: bool) -> str:
    """srun for several tasks: one dead rank ends the step (never a job left hanging), and an MPI program gets
    its world from SLURM through PMIx unless the cluster profile names another --mpi (OpenMPI started by srun
    without it cannot initialise: tested on the dev cluster)."""
    words = shlex.split(launch.strip())
    if not words:
        return ""
    if words[0] == "srun":
        if not any(w.startswith("--kill-on-bad-exit") or w == "-K" for w in words):
            words.append("--kill-on-bad-exit=1")
        if needs_mpi and not any(w.startswith("--mpi") for w in words):
            words.append("--mpi=pmix")
    return shlex.join(words) + " "
