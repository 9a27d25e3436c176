"""The bilevel search loop: weights step on the weight half of the training data, alpha (and beta) on the
architecture half, through whichever architect the config names; checkpointed every epoch for exact resume."""
from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import ConcatDataset

from nas_core.config import CONTINUOUS_METHODS, ExperimentConfig
from nas_core.events import EventKind
from nas_core.search.architect import Architect, aux_skip, build_architect, supernet_kind, warmup_epochs
from nas_core.search.checkpoint import fingerprint, load_checkpoint, save_checkpoint, set_rng_state
from nas_core.train.precision import resolve_precision
from nas_core.search.reporting import EventSink, alpha_payload, collapse_alarm, epoch_summary, progress_payload

ReduceFn = Callable[[list[Tensor]], list[Tensor]]
_PROGRESS_EVERY_S = 5.0


def search_loss(model: nn.Module, batch, reduce_sum=None) -> Tensor:
    """The segmentation loss of the retrain stage (cross-entropy plus Dice), so search and retrain agree."""
    from nas_core.train.loop import segmentation_loss

    images, masks = batch
    logits = model(images)
    if isinstance(logits, (tuple, list)):  # an auxiliary head's output is not part of the search objective
        logits = logits[0]
    return segmentation_loss(logits, masks, reduce_sum=reduce_sum)


def build_search_supernet(cfg: ExperimentConfig) -> nn.Module:
    """The supernet the method runs on: DARTS's, or PC-DARTS's (1/K channels, edge weights); GAEA on the simplex;
    DARTS- with its auxiliary skip."""
    from nas_core.space.supernet import build_supernet

    s = cfg.search
    kind = supernet_kind(s)
    edge_norm = (kind == "pcdarts") if s.edge_norm is None else s.edge_norm
    return build_supernet(cfg.space, pc_k=s.pc_k if kind == "pcdarts" else 1, edge_norm=edge_norm,
                          alpha_mode="simplex" if s.method == "gaea" else "softmax", aux_skip=aux_skip(s))


@dataclass
class SearchResult:
    genotype: Any
    epochs_run: int
    steps: int
    history: list[dict] = field(default_factory=list)
    stopped_early: dict | None = None


class _Cycle:
    """Endless batches from the architecture loader, one epoch after another, each epoch's order seeded."""

    def __init__(self, loader, epoch: int):
        self.loader, self.epoch, self._it = loader, epoch, None

    def next(self):
        while True:
            if self._it is None:
                self.loader.sampler.set_epoch(self.epoch)
                self._it = iter(self.loader)
            try:
                return next(self._it)
            except StopIteration:
                self._it, self.epoch = None, self.epoch + 1


def _loaders(cfg: ExperimentConfig, datasets: dict, single_level: bool, device=None):
    from nas_core.data.loader import make_loader

    bs, seed, workers = cfg.data.batch_size, cfg.seed, cfg.data.workers
    if single_level:
        # Single-level (ERM) GAEA fits weights and alpha on one batch: both halves of the training data are training.
        train = ConcatDataset([datasets["train_w"], datasets["train_a"]])
        return make_loader(train, bs, shuffle=True, seed=seed, workers=workers, device=device), None, \
            make_loader(datasets["val"], bs, shuffle=False, seed=seed, workers=workers, device=device)
    return (make_loader(datasets["train_w"], bs, shuffle=True, seed=seed, workers=workers, device=device),
            make_loader(datasets["train_a"], bs, shuffle=True, seed=seed + 1, workers=workers, device=device),
            make_loader(datasets["val"], bs, shuffle=False, seed=seed, workers=workers, device=device))


def _to(batch, device):
    return tuple(t.to(device, non_blocking=True) for t in batch)


@torch.no_grad()
def _validate(model: nn.Module, loader, num_classes: int, device) -> dict:
    from nas_core.metrics import confusion_matrix, pixel_iou

    model.eval()
    cm = np.zeros((num_classes, num_classes), np.int64)
    total, n = 0.0, 0
    for batch in loader:
        from nas_core.train.loop import segmentation_loss

        images, masks = _to(batch, device)
        logits = model(images)
        logits = logits[0] if isinstance(logits, (tuple, list)) else logits
        total += float(segmentation_loss(logits, masks)) * images.shape[0]
        n += images.shape[0]
        cm += confusion_matrix(logits.argmax(1).cpu(), masks.cpu(), num_classes)
    model.train()
    iou = pixel_iou(cm)
    finite = lambda x: x if x is not None and math.isfinite(x) else None
    return {"val_loss": total / max(n, 1), "val_iou": finite(iou["mean"]),
            "val_iou_per_class": [finite(x) for x in iou["per_class"]]}


class BilevelSearch:
    """One continuous search: `run()` trains to `search.epochs`, resuming from `checkpoint_path` when asked.

    `reduce_grads` is the hook where data-parallel ranks average gradients after each backward (weights, then
    architecture); single-process runs leave it as the identity. With an `engine` (nas_core.distributed) of
    several ranks, every rank reads the same global batch and computes on its shard, BatchNorm statistics are
    synchronised, and only rank 0 writes the checkpoint: N ranks compute what one process computes.
    """

    def __init__(self, cfg: ExperimentConfig, events: EventSink, checkpoint_path: str | Path, *,
                 device: str | torch.device | None = None, reduce_grads: ReduceFn | None = None,
                 on_step: Callable[[dict], None] | None = None, datasets: dict | None = None, engine=None):
        if cfg.search.method not in CONTINUOUS_METHODS:
            raise ValueError(f"search.method: {cfg.search.method!r} is a discrete method; `nasforge search` runs "
                             f"{', '.join(CONTINUOUS_METHODS)}")
        self.cfg, self.events = cfg, events
        self.checkpoint_path = Path(checkpoint_path)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.reduce_grads = reduce_grads
        self.on_step = on_step
        torch.manual_seed(cfg.seed)
        if datasets is None:
            from nas_core.data.datasets import build_datasets

            datasets = build_datasets(cfg.data, cfg.seed)
        self.model = build_search_supernet(cfg).to(self.device)
        self.precision = resolve_precision(cfg.compute, self.device)
        self.precision.prepare(self.model)
        self.engine = engine if engine is not None and engine.world_size > 1 else None
        if self.engine is not None:
            from nas_core.distributed import convert_sync_batchnorm

            if cfg.distributed.sync_bn:
                convert_sync_batchnorm(self.model, self.engine)
            self.engine.broadcast_(list(self.model.parameters()) + list(self.model.buffers()))
            self.reduce_grads = reduce_grads or self.engine.reduce_grads
        self.loss_fn = search_loss
        if self.engine is not None:
            self.loss_fn = functools.partial(search_loss, reduce_sum=self.engine.allreduce_sum)
        # Autocast forward, float32 loss (compute:); only the weight step is compiled, the architect runs eagerly.
        self.weight_loss_fn = self.precision.loss(self.loss_fn, compiled=True)
        self.loss_fn = self.precision.loss(self.loss_fn)
        self.architect: Architect = build_architect(cfg.search, self.model, self.loss_fn)
        s = cfg.search
        self.single_level = self.architect.single_level
        self.train_loader, self.arch_loader, self.val_loader = _loaders(cfg, datasets, self.single_level, self.device)
        self.w_params = list(self.model.weight_parameters())
        self.w_optimizer = torch.optim.SGD(self.w_params, lr=s.w_lr, momentum=s.w_momentum, weight_decay=s.w_weight_decay)
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(self.w_optimizer, s.epochs, eta_min=s.w_lr_min)
        self.warmup = warmup_epochs(s)
        self.fingerprint = fingerprint(cfg.model_dump(mode="json"))
        self.epoch, self.step = 0, 0
        self.history: list[dict] = []
        self.stopped_early: dict | None = None  # the collapse alarm that ended the search, once it has

    # ---- checkpoint ----------------------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint, "stage": "search", "epoch": self.epoch, "step": self.step,
            "model": self.model.state_dict(), "arch": [p.detach().cpu() for p in self.model.arch_parameters()],
            "w_optimizer": self.w_optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
            "architect": self.architect.state_dict(), "event_seq": self.events.seq, "history": self.history,
            "stopped_early": self.stopped_early,
        }

    def load(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        with torch.no_grad():
            for p, a in zip(self.model.arch_parameters(), state["arch"]):
                p.copy_(a)
        self.w_optimizer.load_state_dict(state["w_optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.architect.load_state_dict(state["architect"])
        set_rng_state(state["rng"])
        self.epoch, self.step, self.history = state["epoch"], state["step"], list(state["history"])
        self.stopped_early = state.get("stopped_early")

    def resume(self) -> bool:
        """Continue from the checkpoint if there is one; True when it did."""
        if not self.checkpoint_path.exists():
            return False
        self.load(load_checkpoint(self.checkpoint_path, self.fingerprint))
        return True

    # ---- one step ------------------------------------------------------------------------------------------

    def _batch(self, batch):
        batch = _to(batch, self.device)
        return tuple(self.engine.shard(t) for t in batch) if self.engine is not None else batch

    def _weight_step(self, batch, arch_on: bool) -> float:
        loss = self.weight_loss_fn(self.model, batch)
        params = self.w_params + (self.architect.arch_params if self.single_level and arch_on else [])
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        grads = [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]
        if self.reduce_grads is not None:
            grads = self.reduce_grads(grads)
        n = len(self.w_params)
        for p, g in zip(self.w_params, grads[:n]):
            p.grad = g
        nn.utils.clip_grad_norm_(self.w_params, self.cfg.search.grad_clip)
        self.w_optimizer.step()
        self.w_optimizer.zero_grad(set_to_none=True)
        if len(grads) > n:
            self.architect.apply(grads[n:])
        return float(loss.detach())

    def _train_epoch(self, epoch: int) -> float:
        self.model.train()
        self.train_loader.sampler.set_epoch(epoch)
        arch_batches = _Cycle(self.arch_loader, epoch) if self.arch_loader is not None else None
        arch_on = epoch >= self.warmup
        self.architect.begin_epoch(epoch, self.cfg.search.epochs)
        w_lr = self.scheduler.get_last_lr()[0]
        every = self.cfg.search.events_every_steps
        total, n, last_progress = 0.0, 0, time.monotonic()
        steps_per_epoch = len(self.train_loader)
        for i, batch in enumerate(self.train_loader):
            batch = self._batch(batch)
            if arch_on and not self.single_level:
                val_batch = self._batch(arch_batches.next())
                self.architect.step(batch, val_batch, w_lr, self.w_optimizer, self.reduce_grads)
            loss = self._weight_step(batch, arch_on)
            if not math.isfinite(loss):
                raise FloatingPointError(f"search: training loss is not finite at epoch {epoch}, step {self.step}; "
                                         "lower search.w_lr or search.arch_lr")
            total, n = total + loss, n + 1
            self.step += 1
            if self.engine is not None:
                self.engine.step_done(self.step)
            if every and self.step % every == 0:
                self._emit_alpha(epoch, self.step)
            if self.on_step is not None:
                self.on_step({"epoch": epoch, "batch": i + 1, "batches": steps_per_epoch, "loss": loss})
            if time.monotonic() - last_progress >= _PROGRESS_EVERY_S:
                last_progress = time.monotonic()
                frac = (epoch + (i + 1) / steps_per_epoch) / self.cfg.search.epochs
                self.events.emit("progress", {**self._progress(epoch, frac), "step": self.step})
        return total / max(n, 1)

    def _progress(self, epoch: int, fraction: float) -> dict:
        return progress_payload("search", epoch, self.cfg.search.epochs, fraction, self._started, self._done_at_start)

    def _emit_alpha(self, epoch: int, step: int) -> dict:
        genotype = self.model.genotype().to_dict()
        self.events.emit("alpha", alpha_payload(self.model, epoch, step, genotype))
        return genotype

    # ---- the loop ------------------------------------------------------------------------------------------

    def _log(self, message: str, **fields) -> None:
        self.events.emit(EventKind.log, {"stage": "search", "message": message, **fields})

    def run(self) -> SearchResult:
        epochs = self.cfg.search.epochs
        self._started, self._done_at_start = time.time(), self.epoch / epochs
        num_classes = self.cfg.space.num_classes
        s = self.cfg.search
        if self.epoch == 0:
            self._log(f"search: {s.method} for {epochs} epochs of {len(self.train_loader)} steps, architecture "
                      f"updates from epoch {self.warmup + 1}", topic="start", epoch=0, step=0)
        while self.epoch < epochs and self.stopped_early is None:
            epoch = self.epoch
            t0 = time.monotonic()
            train_loss = self._train_epoch(epoch)
            if self.engine is not None:
                train_loss = self.engine.mean(train_loss)  # each rank saw its own shards
            self.scheduler.step()
            val = _validate(self.precision.wrap(self.model), self.val_loader, num_classes, self.device)
            genotype = self._emit_alpha(epoch, self.step)
            metric = {"stage": "search", "epoch": epoch, "step": self.step, "train_loss": train_loss, **val,
                      "w_lr": self.scheduler.get_last_lr()[0], "arch_updates": epoch >= self.warmup,
                      **self.architect.schedule()}
            if self.engine is not None:
                # What each rank sent per step (gradients, BatchNorm and Dice sums), for the benchmark.
                metric.update(ranks=self.engine.world_size,
                              comm_bytes_per_step=round(self.engine.bytes_communicated / max(self.step, 1)))
            self.events.emit("metric", metric)
            self.events.emit("genotype", {"stage": "search", "epoch": epoch, "step": self.step, "genotype": genotype})
            self.history.append({k: metric[k] for k in ("epoch", "train_loss", "val_loss", "val_iou")})
            self._log(epoch_summary(self.model, metric, epochs, time.monotonic() - t0), topic="epoch", epoch=epoch,
                      step=self.step)
            self.epoch += 1
            alarm = collapse_alarm(genotype, s.collapse_stop) if s.collapse_stop and self.epoch < epochs else None
            if alarm is not None:
                self.stopped_early = {"epoch": epoch, **alarm}
                self._log(f"search stopped early after epoch {epoch + 1}/{epochs}: the {alarm['cell']} cell decodes "
                          f"to {alarm['param_free']} parameter-free ops (search.collapse_stop {s.collapse_stop}, as "
                          "in DARTS+); the genotype of this epoch goes on to decode and retrain",
                          topic="early_stop", level="warning", epoch=epoch, step=self.step,
                          early_stop=self.stopped_early)
            done = 1.0 if alarm is not None else self.epoch / epochs
            self.events.emit("progress", {**self._progress(epoch, done), "step": self.step})
            # Events first, checkpoint second: a kill in between repeats the epoch, whose events are then skipped.
            if self.engine is None or self.engine.is_main:
                save_checkpoint(self.checkpoint_path, self.state())
        return SearchResult(self.model.genotype(), self.epoch, self.step, self.history, self.stopped_early)
