"""The worker's own settings, from the environment (`NASFORGE_*`); the database and Redis come from backend settings."""
from __future__ import annotations

import json
import os
import shlex
import sys
from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from nas_core.events import HEARTBEAT_S, STALE_AFTER_S


class WorkerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NASFORGE_", extra="ignore")

    reconcile_interval_s: float = Field(10.0, gt=0, description="Celery beat period of nasforge.reconcile.")
    watch_interval_s: float = Field(2.0, gt=0, description="Celery beat period of nasforge.tail_active (event latency).")
    # Below HEARTBEAT_S a healthy run flickers to stale between beats; allowed (a test makes a run stale at once).
    stale_after_s: float = Field(STALE_AFTER_S, gt=0,
                                 description="A running run with no event this long is marked stale (the search writes "
                                             f"one at least every {HEARTBEAT_S:g} s, nas_core.events.HEARTBEAT_S).")
    cancel_grace_s: float = Field(10.0, ge=0, description="SIGTERM, then SIGKILL after this long (local launcher).")
    search_command: str = Field("", description="Command that runs a search, as a JSON list or a shell-like string; "
                                                "default: the `nasforge` next to this Python.")
    slurm_conf: str | None = Field(None, description="SLURM_CONF for sbatch/squeue/scancel (else inherited).")
    slurm_bin: Path | None = Field(None, description="Folder holding sbatch/squeue/scontrol/scancel (else PATH).")
    slurm_template: Path | None = Field(None, description="sbatch template; default deploy/slurm/job.sbatch.")
    slurm_profile: Path | None = Field(None, description="YAML with the cluster's module and environment lines.")
    lock_timeout_s: float = Field(60.0, gt=0, description="A per-run lock held by a dead worker frees itself after this.")

    def search_argv(self) -> list[str]:
        raw = self.search_command.strip()
        if not raw:
            return [str(Path(sys.executable).with_name("nasforge"))]
        if raw.startswith("["):
            argv = json.loads(raw)
            if not (isinstance(argv, list) and argv and all(isinstance(a, str) for a in argv)):
                raise ValueError("NASFORGE_SEARCH_COMMAND: a JSON value must be a non-empty list of strings")
            return argv
        return shlex.split(raw)

    def slurm_env(self) -> dict[str, str]:
        env = dict(os.environ)
        if self.slurm_conf:
            env["SLURM_CONF"] = self.slurm_conf
        return env

    def slurm_tool(self, name: str) -> str:
        return str(self.slurm_bin / name) if self.slurm_bin else name


@lru_cache
def get_worker_settings() -> WorkerSettings:
    return WorkerSettings()
