"""A discrete search as one JSON-able object: the strategy, the space, the trial function and where it writes.

`SearchJob.from_experiment` maps the experiment schema onto it; the orchestrator reads it from `job.json`
in its work directory, so `mpirun`/`srun` need only that one path.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from nas_core.discrete._base import SearchSpace, Strategy
from nas_core.discrete.trial import SYNTHETIC, TRAIN, check_objective
from nas_core.rundir import RunDir, write_atomic
from nas_core.space.config import SpaceConfig


class SearchJob(BaseModel):
    model_config = ConfigDict(extra="forbid")
    workdir: str = Field(..., description="The run directory: job, event log, trial checkpoint and trial logs (nas_core.rundir).")
    method: Literal["random", "evolution", "reinforce"] = "random"
    trials: int = Field(20, ge=1, le=100000, description="Distinct candidates to train.")
    seed: int = Field(0, ge=0)
    population: int = Field(50, ge=2)
    tournament: int = Field(10, ge=2)
    reinforce: dict[str, float] = Field(default_factory=dict, description="lr, baseline_decay, entropy_weight, hidden.")
    categorical: list[int] | None = Field(None, description="A toy space of independent choices (tests, benchmarks).")
    space: SpaceConfig | None = Field(None, description="The cell space of nas_core.space (used when categorical is unset).")
    objective: str = Field(SYNTHETIC, description="Allowed trial function, module:function.")
    objective_params: dict[str, Any] = Field(default_factory=dict)
    budget: dict[str, Any] = Field(default_factory=lambda: {"epochs": 2})
    time_limit_s: float | None = Field(None, gt=0, description="A trial running longer is killed and retried once.")
    max_attempts: int = Field(2, ge=1, le=10, description="Attempts per trial: 2 = retried once.")
    prescreen: int = Field(0, ge=0, le=1000000, description="Random search only: score this many random candidates by a zero-cost proxy and train only the top `trials` (0: off).")
    prescreen_proxy: str = Field("synflow", description="The proxy that ranks pre-screened candidates (higher is better).")
    compute_budget_s: float | None = Field(None, gt=0, description="Stop starting trials once finished ones used this many worker-seconds (a random baseline at equal compute); `trials` stays the cap.")
    barrier: bool = Field(False, description="Dispatch in synchronised batches (only to measure what asynchrony saves).")
    gpus_per_node: int = Field(0, ge=0, le=16, description="A worker's trials see GPU local_rank % gpus_per_node.")
    silent_worker_s: float = Field(120, gt=0, description="A worker silent this long past its trial's limit ends the job.")

    @field_validator("objective")
    @classmethod
    def _allowed(cls, v: str) -> str:
        return check_objective(v)

    @model_validator(mode="after")
    def _check_prescreen(self) -> "SearchJob":
        if self.prescreen:
            if self.method != "random":
                raise ValueError("prescreen: pre-screening picks among random candidates; use method random or prescreen 0")
            if self.prescreen < self.trials:
                raise ValueError(f"prescreen: score at least as many candidates as are trained ({self.trials}), got {self.prescreen}")
        return self

    @property
    def root(self) -> Path:
        return Path(self.workdir)

    @property
    def run_dir(self) -> RunDir:
        """The work directory as a run directory (`RunDir`: job, event log, trial checkpoint, trial logs)."""
        return RunDir(self.workdir)

    def fingerprint(self) -> str:
        """What must match for a checkpoint to be resumed: everything that decides which trials exist."""
        keep = self.model_dump(mode="json", exclude={"workdir", "silent_worker_s", "gpus_per_node", "barrier", "time_limit_s"})
        return hashlib.sha256(json.dumps(keep, sort_keys=True).encode()).hexdigest()[:16]

    def build_space(self) -> SearchSpace:
        from nas_core.discrete._space import CategoricalSpace, CellSearchSpace

        if self.categorical is not None:
            return CategoricalSpace(self.categorical)
        return CellSearchSpace(self.space or SpaceConfig())

    def build_strategy(self, seed: int | None = None) -> Strategy:
        from nas_core.discrete import create_strategy

        kwargs: dict[str, Any] = {}
        if self.method == "evolution":
            kwargs = {"population": self.population, "tournament": self.tournament}
        elif self.method == "reinforce":
            kwargs = dict(self.reinforce)
            if "hidden" in kwargs:
                kwargs["hidden"] = int(kwargs["hidden"])
        return create_strategy(self.method, self.build_space(), seed=self.seed if seed is None else seed, **kwargs)

    def save(self) -> Path:
        path = self.run_dir.job
        write_atomic(path, self.model_dump_json(indent=2))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "SearchJob":
        path = Path(path)
        try:
            return cls.model_validate_json(path.read_text())
        except FileNotFoundError:
            raise ValueError(f"{path}: no such search job file") from None
        except ValidationError as exc:
            lines = [f"{path}: invalid search job"] + [f"  {'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
            raise ValueError("\n".join(lines)) from None

    @classmethod
    def from_experiment(cls, exp: Any, workdir: str | os.PathLike, **overrides: Any) -> "SearchJob":
        """The discrete part of an `ExperimentConfig` (search.method random/evolution/reinforce): each trial
        trains its candidate for search.trial_epochs on the experiment's data and scores validation IoU."""
        s = exp.search
        if s.method not in ("random", "evolution", "reinforce"):
            raise ValueError(f"search.method: {s.method!r} is a continuous method; a discrete search needs random, evolution or reinforce")
        fields = dict(workdir=str(workdir), method=s.method, trials=s.trials, seed=exp.seed, population=s.population,
                      tournament=min(s.tournament, s.population), space=exp.space, budget={"epochs": s.trial_epochs},
                      compute_budget_s=s.compute_budget_s,
                      gpus_per_node=exp.launcher.slurm.gpus_per_node, objective=TRAIN,
                      objective_params={"experiment": exp.model_dump(mode="json")})
        fields.update(overrides)
        return cls(**fields)
