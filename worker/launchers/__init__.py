"""Launchers run a run's search somewhere: `local` (a process group here) or `slurm` (a batch job)."""
from __future__ import annotations

from worker.launchers._base import ACTIVE, ENDED, REQUEUE_STATES, JobState, Launcher, RunSpec, confine
from worker.launchers.local import LocalLauncher
from worker.launchers.slurm import ClusterProfile, SlurmLauncher
from worker.settings import get_worker_settings

__all__ = ["ACTIVE", "ENDED", "REQUEUE_STATES", "JobState", "Launcher", "RunSpec", "confine", "LocalLauncher",
           "SlurmLauncher", "ClusterProfile", "create_launcher"]


def create_launcher(kind: str, settings=None) -> Launcher:
    """The launcher named by a run's `launcher` field, configured from the worker settings."""
    s = settings or get_worker_settings()
    if kind == "local":
        return LocalLauncher(s.search_argv(), cancel_grace_s=s.cancel_grace_s)
    if kind == "slurm":
        return SlurmLauncher(s.search_argv(), env=s.slurm_env(), tool=s.slurm_tool, template=s.slurm_template,
                             profile=ClusterProfile.load(s.slurm_profile))
    raise ValueError(f"launcher: {kind!r} is not one of local, slurm")
