"""The one experiment schema: the YAML file, the API body and the browser form are this object."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from nas_core.data.config import DataConfig
from nas_core.models.hand_designed import NetworkConfig
from nas_core.space.config import SpaceConfig

CONTINUOUS_METHODS = ("darts", "pcdarts", "gaea", "betadarts", "dartsminus")
DISCRETE_METHODS = ("random", "evolution", "reinforce")
METHODS = CONTINUOUS_METHODS + DISCRETE_METHODS


class SearchConfig(BaseModel):
    """How the space is searched. Defaults follow the reference implementations."""

    model_config = ConfigDict(extra="forbid")
    method: Literal[METHODS] = "darts"
    order: Literal[1, 2] = Field(1, description="DARTS: first or second order hypergradient.")
    epochs: int = Field(10, ge=1, le=1000)
    w_lr: float = Field(0.025, gt=0, description="Weight SGD learning rate (cosine to w_lr_min).")
    w_lr_min: float = Field(0.001, ge=0)
    w_momentum: float = Field(0.9, ge=0, lt=1)
    w_weight_decay: float = Field(3e-4, ge=0)
    grad_clip: float = Field(5.0, gt=0)
    arch_lr: float | None = Field(None, gt=0, description="Architecture learning rate (default per method: DARTS, beta-DARTS and DARTS- 3e-4, PC-DARTS 6e-4, GAEA 0.1).")
    arch_weight_decay: float = Field(1e-3, ge=0)
    arch_optimizer: Literal["adam", "sgd"] = Field("adam", description="DARTS, PC-DARTS, beta-DARTS, DARTS-: the optimiser of alpha. adam: the papers' (betas 0.5, 0.999); sgd: plain gradient descent, a step proportional to the gradient (alpha's gradients are ~1e-3: it needs an arch_lr of 1 or more). GAEA has its own exponentiated-gradient update and refuses sgd.")
    pc_k: int = Field(4, ge=1, le=16, description="PC-DARTS: 1/K of the channels go through the mixed op.")
    warmup_epochs: int | None = Field(None, ge=0, description="Epochs before architecture updates start (default: PC-DARTS 15 of 50, i.e. 30% of epochs; others 0).")
    single_level: bool = Field(False, description="GAEA: update weights and alpha on the same batch (ERM).")
    supernet: Literal["darts", "pcdarts"] | None = Field(None, description="GAEA: the supernet it runs on (default pcdarts: partial channels and edge weights).")
    edge_norm: bool | None = Field(None, description="PC-DARTS edge weights beta (default: on for the PC-DARTS supernet); off with pc_k 1 is DARTS.")
    trials: int = Field(20, ge=1, le=100000, description="Discrete search: candidates to train.")
    trial_epochs: int = Field(2, ge=1, description="Discrete search: training budget per candidate.")
    population: int = Field(50, ge=2, description="Regularised evolution population.")
    tournament: int = Field(10, ge=2, description="Regularised evolution tournament size.")
    compute_budget_s: float | None = Field(None, gt=0, description="Discrete search: stop starting trials once finished trials used this many worker-seconds (None: no budget; a random baseline gets its search's compute).")
    beta_decay: float = Field(25.0, ge=0, description="beta-DARTS: the beta-decay coefficient lambda reached at the end of the search; it rises linearly from 0 (the reference's 0.5 per epoch over 50 epochs).")
    aux_skip: float = Field(1.0, ge=0, description="DARTS-: the auxiliary skip connection's weight at the first epoch; it decays linearly to 0 at the last epoch.")
    collapse_stop: int | None = Field(None, ge=1, description="Early stop as in DARTS+: end the search after the epoch whose decoded genotype has this many parameter-free ops (skip, pools) in one cell; decode and retrain follow. None: off.")
    events_every_steps: int = Field(0, ge=0, description="Also emit alpha every N steps (0: per epoch only).")

    @model_validator(mode="after")
    def _check_arch_optimizer(self) -> "SearchConfig":
        if self.method == "gaea" and self.arch_optimizer != "adam":
            raise ValueError("search.arch_optimizer: gaea moves alpha by its own exponentiated gradient (and the "
                             "PC-DARTS edge weights beta by Adam), so it takes no arch_optimizer; remove it or set "
                             "it to adam")
        return self


class RetrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool = True
    epochs: int = Field(10, ge=1, le=1000)
    lr: float = Field(0.025, gt=0)
    iou_thresholds: list[float] = Field(default_factory=lambda: [0.25, 0.5, 0.75])


class ComputeConfig(BaseModel):
    """How search and retrain compute (nas_core.train.precision). `auto`: off on CPU; on CUDA bf16 autocast and
    channels_last, a default that waits for a GPU measurement (bench/gpu.sh)."""

    model_config = ConfigDict(extra="forbid")
    amp: Literal["auto", "off", "bf16"] = Field("auto", description="bfloat16 autocast of the forward pass (alpha, beta, softmax and the loss stay float32).")
    channels_last: Literal["auto", "on", "off"] = Field("auto", description="NHWC memory format for weights and inputs.")
    compile: bool = Field(False, description="torch.compile the weight step's forward (the architecture step stays eager; minutes to compile on CPU, for long runs).")

    @field_validator("amp", "channels_last", mode="before")
    @classmethod
    def _yaml_on_off(cls, v, info):
        # YAML reads a bare `on` / `off` as true / false; amp's one "on" is bf16.
        if isinstance(v, bool):
            return ("bf16" if info.field_name == "amp" else "on") if v else "off"
        return v


class DistributedConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    engine: Literal["none", "ddp", "horovod"] = "none"
    sync_bn: bool = True
    timeout_s: int = Field(60, ge=5, description="A rank silent this long fails the run with its name.")


class SlurmConfig(BaseModel):
    """Scheduler resources. Every value is validated here and quoted again where it reaches a shell."""

    model_config = ConfigDict(extra="forbid")
    partition: str | None = Field(None, pattern=r"^[A-Za-z0-9_.\-]{1,64}$")
    account: str | None = Field(None, pattern=r"^[A-Za-z0-9_.\-]{1,64}$")
    qos: str | None = Field(None, pattern=r"^[A-Za-z0-9_.\-]{1,64}$")
    nodes: int = Field(1, ge=1, le=1024)
    tasks_per_node: int = Field(1, ge=1, le=256)
    gpus_per_node: int = Field(0, ge=0, le=16)
    cpus_per_task: int = Field(1, ge=1, le=256)
    mem: str | None = Field(None, pattern=r"^[0-9]{1,7}[KMGT]?$", description="Memory per node, e.g. 16G.")
    time: str = Field("01:00:00", pattern=r"^([0-9]{1,3}-)?[0-9]{1,2}:[0-9]{2}(:[0-9]{2})?$", description="Time limit [D-]HH:MM[:SS].")


class LauncherConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["local", "slurm"] = "local"
    processes: int = Field(1, ge=1, le=1024, description="Processes (ranks) for the run.")
    max_restarts: int = Field(2, ge=0, le=100, description="Requeues after preemption or node failure.")
    slurm: SlurmConfig = Field(default_factory=SlurmConfig)


class BaselineConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    random: bool = Field(True, description="Add a random-search baseline at equal compute.")
    seeds: int = Field(3, ge=1, le=100)
    networks: list[NetworkConfig] = Field(default_factory=list, description="Hand-designed networks trained and "
                                          "evaluated beside the search by the same retrain and evaluate stages "
                                          "(same data, seed and retrain budget), one baseline run each.")


class ExperimentConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"title": "Experiment"})
    name: str = Field(..., min_length=1, max_length=200)
    description: str = Field("", max_length=10000)
    seed: int = Field(0, ge=0)
    repeats: int = Field(1, ge=1, le=100, description="A study over seeds: a search launch starts this many searches "
                         "(seeds seed, seed+1, ...), each with one random baseline of its own seed at equal compute; "
                         "the experiment page sets them side by side. 1: one search, with baseline.seeds baselines.")
    space: SpaceConfig = Field(default_factory=SpaceConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    search: SearchConfig = Field(default_factory=SearchConfig)
    retrain: RetrainConfig = Field(default_factory=RetrainConfig)
    distributed: DistributedConfig = Field(default_factory=DistributedConfig)
    compute: ComputeConfig = Field(default_factory=ComputeConfig)
    launcher: LauncherConfig = Field(default_factory=LauncherConfig)
    baseline: BaselineConfig = Field(default_factory=BaselineConfig)

    @model_validator(mode="after")
    def _check(self) -> "ExperimentConfig":
        if self.data.source == "prepared" and not self.data.path:
            raise ValueError("data.path: a prepared dataset needs its directory; set data.path or use data.source: synthetic")
        self._check_launch_shape()
        return self

    @property
    def processes(self) -> int:
        """The ranks the launcher starts: SLURM tasks (nodes x tasks_per_node) on slurm, else launcher.processes."""
        if self.launcher.kind == "slurm":
            return self.launcher.slurm.nodes * self.launcher.slurm.tasks_per_node
        return self.launcher.processes

    def _check_launch_shape(self) -> None:
        # Several processes are either data-parallel ranks of one search or the MPI orchestrator of a discrete
        # one; any other shape starts independent searches that write one run directory (doubled events).
        n, engine, method = self.processes, self.distributed.engine, self.search.method
        where = ("launcher.slurm.nodes x launcher.slurm.tasks_per_node" if self.launcher.kind == "slurm"
                 else "launcher.processes")
        if n <= 1:
            return
        if method in CONTINUOUS_METHODS and engine == "none":
            raise ValueError(f"distributed.engine: {method} on {n} processes ({where}) needs distributed.engine ddp "
                             f"or horovod to split each batch across them; set it, or set {where} to 1")
        if method in DISCRETE_METHODS and engine != "none":
            raise ValueError(f"distributed.engine: a discrete search ({method}) on {n} processes ({where}) runs them "
                             "as its MPI orchestrator (rank 0 dispatches, the others train candidates), never as "
                             f"{engine} ranks; set distributed.engine: none")


class ConfigError(ValueError):
    """An experiment file or body that does not fit the schema; the message names the file and field."""


def format_validation_error(exc: ValidationError, where: str = "experiment") -> str:
    lines = [f"{where}: invalid experiment config"]
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        lines.append(f"  {loc}: {err['msg']}")
    return "\n".join(lines)


def parse_experiment(data: Any, where: str = "experiment") -> ExperimentConfig:
    try:
        return ExperimentConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, where)) from None


# The fields of an experiment that name a file or folder: relative in a file, they are taken from the file's own
# folder (as data specs are), so the same YAML works from any working directory.
PATH_FIELDS = (("data", "path"),)


def resolve_paths(data: dict[str, Any], base: Path) -> dict[str, Any]:
    """`data` with each relative PATH_FIELDS value made absolute from `base` (a copy; other values untouched)."""
    out = dict(data)
    for section, key in PATH_FIELDS:
        part = out.get(section)
        if isinstance(part, dict) and isinstance(part.get(key), str) and part[key].strip():
            value = Path(part[key]).expanduser()
            out[section] = {**part, key: str(value if value.is_absolute() else (base / value).resolve())}
    return out


def read_experiment_file(path: str | Path, resolve: bool = True) -> dict[str, Any]:
    """The mapping an experiment YAML file holds, or a ConfigError naming the file. With `resolve`, relative paths
    in it are taken from the file's folder; without, they are left as written (a server resolves them in its roots)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such experiment file") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: an experiment file is a mapping with at least `name:`")
    return resolve_paths(data, path.resolve().parent) if resolve else data


def load_experiment(path: str | Path) -> ExperimentConfig:
    return parse_experiment(read_experiment_file(path), where=str(path))


# The demo: DARTS on synthetic helicopters, sized from measurements (docs/search.md, "Defaults that learn") so that
# on one CPU thread, in about three minutes, alpha visibly leaves uniform and the retrained cell finds the
# helicopters. examples/darts-helicopters.yaml is this experiment, and the browser form starts from it. The
# per-field defaults stay the papers' (a 3e-4 architecture step is right for DARTS's 20k steps, not for 45; the
# alpha weight decay of 1e-3 is DARTS's too, and at this budget it holds alpha near uniform).
DEMO_EXPERIMENT: dict[str, Any] = {
    "name": "darts-helicopters",
    "space": {"macro": "unet", "depth": 1, "channels": 8,
              "cells": {t: {"nodes": 3} for t in ("normal", "down", "up")}},
    "data": {"source": "synthetic", "tile_size": 32, "num_tiles": 512, "batch_size": 4},
    "search": {"method": "darts", "order": 1, "epochs": 1, "arch_lr": 0.3, "arch_weight_decay": 0.0},
    "retrain": {"epochs": 14, "lr": 0.1},
}


def experiment_json_schema() -> dict[str, Any]:
    schema = ExperimentConfig.model_json_schema()
    # Defaults made by factories (cells, op sets) are not in the per-field schema; the whole default config is.
    # The form starts from the demo (a search that learns in minutes on a CPU), not from the papers' per-field
    # defaults, which need a GPU's budget to move alpha at all.
    schema["default"] = ExperimentConfig.model_validate({**DEMO_EXPERIMENT, "name": "experiment"}).model_dump(mode="json")
    return schema
