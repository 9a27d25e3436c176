"""The architecture updaters of the bilevel search: DARTS (first and second order), PC-DARTS, GAEA, and the two
remedies for DARTS's collapse to parameter-free ops, beta-DARTS (beta-decay regularisation) and DARTS- (an
auxiliary skip connection whose weight decays to 0).

Each is an `Architect` over one supernet: `hypergradient` says how alpha (and beta) should move, `apply` moves it,
`begin_epoch` follows the method's schedule. The bilevel loop (`loop.py`) owns the weights and their optimiser; an
architect only reads them.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import torch
from torch import Tensor, nn

from nas_core.config import CONTINUOUS_METHODS
from nas_core.train.precision import float32

LossFn = Callable[[nn.Module, Any], Tensor]

# Defaults of the reference implementations: DARTS (Liu et al. 2019), PC-DARTS (Xu et al. 2020), GAEA (Li et al. 2021);
# beta-DARTS (Ye et al. 2022) and DARTS- (Chu et al. 2021) keep DARTS's Adam settings.
ARCH_LR = {"darts": 3e-4, "pcdarts": 6e-4, "gaea": 0.1, "betadarts": 3e-4, "dartsminus": 3e-4}
ADAM_BETAS = (0.5, 0.999)
PCDARTS_WARMUP_SHARE = 15 / 50


def _grads(loss: Tensor, params: Sequence[Tensor], **kw: Any) -> list[Tensor]:
    # Parameters a loss does not reach (the `none` op, an unused edge) get a zero gradient, not None.
    out = torch.autograd.grad(loss, list(params), allow_unused=True, **kw)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params, out)]


class Architect:
    """One architecture updater: the interface the bilevel loop sees."""

    name = "base"
    single_level = False
    reduce: Callable[[list[Tensor]], list[Tensor]] | None = None

    @property
    def reduces_inside(self) -> bool:
        """True when hypergradient() already averaged across ranks (the unrolled step needs global gradients)."""
        return False

    def _global_grads(self, loss: Tensor, params: list[Tensor]) -> list[Tensor]:
        grads = _grads(loss, params)
        return self.reduce(grads) if self.reduce is not None else grads

    def __init__(self, model: nn.Module, loss_fn: LossFn):
        self.model = model
        self.loss_fn = loss_fn
        self.arch_params = list(model.arch_parameters())
        self.weight_params = list(model.weight_parameters())
        if not self.arch_params:
            raise ValueError(f"{self.name}: the supernet has no architecture parameters to search")

    def hypergradient(self, train_batch: Any, val_batch: Any, w_lr: float,
                      w_optimizer: torch.optim.Optimizer | None) -> tuple[list[Tensor], float]:
        """Gradient of the validation loss with respect to the architecture parameters, and that loss."""
        raise NotImplementedError

    def apply(self, grads: Sequence[Tensor]) -> None:
        """Move the architecture parameters along `grads` (already averaged across ranks, if any)."""
        raise NotImplementedError

    def step(self, train_batch: Any, val_batch: Any, w_lr: float, w_optimizer: torch.optim.Optimizer | None,
             reduce_grads: Callable[[list[Tensor]], list[Tensor]] | None = None) -> float:
        self.reduce = reduce_grads
        grads, loss = self.hypergradient(train_batch, val_batch, w_lr, w_optimizer)
        if reduce_grads is not None and not self.reduces_inside:
            grads = reduce_grads(grads)
        self.apply(grads)
        return loss

    def begin_epoch(self, epoch: int, epochs: int) -> None:
        """Called before each epoch (0-based) of `epochs`: the place for a schedule that depends on progress."""

    def schedule(self) -> dict[str, float]:
        """The scheduled coefficients of this epoch, by name, for the epoch's metric event (none for most)."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


class DartsArchitect(Architect):
    """DARTS: Adam on alpha (or plain SGD, `optimizer="sgd"`). Order 1 uses grad_alpha L_val(w); order 2
    differentiates through one unrolled weight step w' = w - eta * grad_w L_train(w), with the Hessian-vector
    product by central differences."""

    name = "darts"

    def __init__(self, model: nn.Module, loss_fn: LossFn, *, order: int = 1, lr: float = ARCH_LR["darts"],
                 betas: tuple[float, float] = ADAM_BETAS, weight_decay: float = 1e-3, optimizer: str = "adam"):
        super().__init__(model, loss_fn)
        if order not in (1, 2):
            raise ValueError(f"search.order must be 1 or 2, not {order}")
        self.order = order
        # Adam is the papers'. SGD's step is proportional to the gradient: a gradient off by a constant factor
        # (a sum over ranks instead of a mean) moves alpha differently, where Adam's normalised step hides it.
        if optimizer == "adam":
            self.optimizer = torch.optim.Adam(self.arch_params, lr=lr, betas=betas, weight_decay=weight_decay)
        elif optimizer == "sgd":
            self.optimizer = torch.optim.SGD(self.arch_params, lr=lr, weight_decay=weight_decay)
        else:
            raise ValueError(f"search.arch_optimizer must be adam or sgd, not {optimizer!r}")

    @property
    def reduces_inside(self) -> bool:
        return self.order == 2

    def hypergradient(self, train_batch, val_batch, w_lr, w_optimizer):
        if self.order == 1:
            loss = self.loss_fn(self.model, val_batch)
            return _grads(loss, self.arch_params), float(loss.detach())
        return self._unrolled(train_batch, val_batch, w_lr, w_optimizer)

    def _unrolled(self, train_batch, val_batch, eta, w_optimizer):
        w = self.weight_params
        saved = [p.detach().clone() for p in w]
        # The weight step the optimiser would take (momentum and weight decay included, as in DARTS).
        # Under data parallelism every gradient inside the unrolled step is averaged across ranks, so each rank
        # takes the same w' and the same finite-difference epsilon as one process on the whole batch.
        g_train = self._global_grads(self.loss_fn(self.model, train_batch), w)
        momentum, decay = _sgd_settings(w_optimizer)
        with torch.no_grad():
            for p, g in zip(w, g_train):
                buf = w_optimizer.state.get(p, {}).get("momentum_buffer") if w_optimizer is not None else None
                d = g + decay * p
                if buf is not None:
                    d = d + momentum * buf
                p.sub_(eta * d)
        val_loss = self.loss_fn(self.model, val_batch)
        grads = self._global_grads(val_loss, self.arch_params + w)
        d_alpha, v = grads[: len(self.arch_params)], grads[len(self.arch_params):]
        hvp = self._hessian_vector_product(saved, v, train_batch)
        with torch.no_grad():
            for p, s in zip(w, saved):
                p.copy_(s)
        return [da - eta * h for da, h in zip(d_alpha, hvp)], float(val_loss.detach())

    def _hessian_vector_product(self, w0: list[Tensor], v: list[Tensor], train_batch) -> list[Tensor]:
        """grad^2_{alpha,w} L_train(w, alpha) . v by central differences at w +- eps v."""
        norm = torch.sqrt(sum((x * x).sum() for x in v))
        eps = 0.01 / max(float(norm), 1e-12)
        out = []
        for sign in (1.0, -1.0):
            with torch.no_grad():
                for p, p0, x in zip(self.weight_params, w0, v):
                    p.copy_(p0 + sign * eps * x)
            with float32():  # eps * v is below bfloat16's resolution: the difference needs float32
                out.append(self._global_grads(self.loss_fn(self.model, train_batch), self.arch_params))
        return [(gp - gn) / (2 * eps) for gp, gn in zip(*out)]

    def apply(self, grads):
        self.optimizer.zero_grad(set_to_none=True)
        for p, g in zip(self.arch_params, grads):
            p.grad = g.detach().clone()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    def state_dict(self):
        return {"optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state):
        self.optimizer.load_state_dict(state["optimizer"])


class PCDartsArchitect(DartsArchitect):
    """PC-DARTS: the DARTS update with its own arch lr; partial channels and edge weights live in the supernet."""

    name = "pcdarts"

    def __init__(self, model: nn.Module, loss_fn: LossFn, *, lr: float = ARCH_LR["pcdarts"], **kw: Any):
        super().__init__(model, loss_fn, lr=lr, **kw)


def beta_decay_loss(alphas: Sequence[Tensor]) -> Tensor:
    """beta-DARTS's regulariser on the architecture logits: per cell type, the mean over edges of
    logsumexp(alpha) over the ops. Its gradient is softmax(alpha) / edges, so it pulls the strongest logits down
    hardest: the softmax weights stay moderate and their variance small, which is what keeps skip from taking over."""
    return sum(torch.logsumexp(a, dim=-1).mean() for a in alphas)


def beta_decay_coefficient(epoch: int, epochs: int, lam: float) -> float:
    """lambda at `epoch` (0-based): linear from 0 to `lam` over the search; the reference's 0.5 per epoch over 50
    epochs is lam = 25, stated relative to the schedule so that a short search gets the same ramp."""
    return lam * epoch / epochs


class BetaDartsArchitect(DartsArchitect):
    """beta-DARTS: the DARTS update of L_val + lambda * beta_decay_loss(alpha), lambda rising over the search."""

    name = "betadarts"

    def __init__(self, model: nn.Module, loss_fn: LossFn, *, lr: float = ARCH_LR["betadarts"], lam: float = 25.0,
                 **kw: Any):
        super().__init__(model, loss_fn, lr=lr, **kw)
        self.lam, self.coefficient = lam, 0.0
        self._alphas = list(model.alphas().values()) if hasattr(model, "alphas") else self.arch_params

    def begin_epoch(self, epoch, epochs):
        self.coefficient = beta_decay_coefficient(epoch, epochs, self.lam)

    def schedule(self):
        return {"beta_decay": self.coefficient}

    def hypergradient(self, train_batch, val_batch, w_lr, w_optimizer):
        grads, loss = super().hypergradient(train_batch, val_batch, w_lr, w_optimizer)
        if self.coefficient == 0:
            return grads, loss
        # The regulariser depends on alpha alone, so every rank adds the same term: averaging across ranks after
        # (or inside, at order 2) leaves it as it is.
        reg = _grads(self.coefficient * beta_decay_loss(self._alphas), self.arch_params)
        return [g + r for g, r in zip(grads, reg)], loss


def aux_skip_weight(epoch: int, epochs: int, start: float = 1.0) -> float:
    """DARTS-'s beta at `epoch` (0-based): `start` at the first epoch, linearly down to exactly 0 at the last, so
    the last epoch trains and validates the plain DARTS supernet whose alpha is decoded."""
    return start * (1 - epoch / (epochs - 1)) if epochs > 1 else 0.0


class DartsMinusArchitect(DartsArchitect):
    """DARTS-: the DARTS update on a supernet whose every edge adds beta * skip(x) outside the softmax (the
    supernet's `aux_skip`). The auxiliary path gives the gradient the residual route that skip_connect otherwise
    wins through alpha; beta decays to 0, and the decoded genotype never contains it."""

    name = "dartsminus"

    def __init__(self, model: nn.Module, loss_fn: LossFn, *, lr: float = ARCH_LR["dartsminus"], start: float = 1.0,
                 **kw: Any):
        super().__init__(model, loss_fn, lr=lr, **kw)
        if not hasattr(model, "set_aux_skip_weight"):
            raise ValueError("dartsminus: the supernet has no auxiliary skip (build it with aux_skip=True)")
        self.start = self.weight = start
        model.set_aux_skip_weight(start)

    def begin_epoch(self, epoch, epochs):
        self.weight = aux_skip_weight(epoch, epochs, self.start)
        self.model.set_aux_skip_weight(self.weight)

    def schedule(self):
        return {"aux_skip": self.weight}


class GaeaArchitect(Architect):
    """GAEA: exponentiated gradient, alpha <- alpha * exp(-eta * grad), then each row renormalised, so every row
    stays on the simplex. The supernet uses alpha directly (alpha_mode="simplex"); each alpha's last dimension is
    one simplex. Bilevel uses the first-order validation gradient; single-level (ERM) takes the gradient of the
    training loss on the weights' own batch, which the loop passes to `apply`.

    On the PC-DARTS supernet the edge weights beta are softmax-parametrised there (over each node's incoming
    edges), so they move by PC-DARTS's Adam step rather than on a simplex of their own.
    """

    name = "gaea"

    def __init__(self, model: nn.Module, loss_fn: LossFn, *, lr: float = ARCH_LR["gaea"], single_level: bool = False,
                 beta_lr: float = ARCH_LR["pcdarts"], beta_weight_decay: float = 1e-3):
        super().__init__(model, loss_fn)
        self.lr = lr
        self.single_level = single_level
        alphas = model.alphas().values() if hasattr(model, "alphas") else self.arch_params
        alpha_ids = {id(p) for p in alphas}
        self._simplex = [id(p) in alpha_ids for p in self.arch_params]
        with torch.no_grad():
            for p, on_simplex in zip(self.arch_params, self._simplex):
                if not on_simplex:
                    continue
                if (p < 0).any():
                    raise ValueError("gaea: architecture parameters must start on the simplex (build the supernet "
                                     "with alpha_mode='simplex')")
                p.div_(p.sum(-1, keepdim=True))
        others = [p for p, s in zip(self.arch_params, self._simplex) if not s]
        self.beta_optimizer = (torch.optim.Adam(others, lr=beta_lr, betas=ADAM_BETAS, weight_decay=beta_weight_decay)
                               if others else None)

    def hypergradient(self, train_batch, val_batch, w_lr, w_optimizer):
        batch = train_batch if self.single_level else val_batch
        loss = self.loss_fn(self.model, batch)
        return _grads(loss, self.arch_params), float(loss.detach())

    def apply(self, grads):
        with torch.no_grad():
            for p, g, on_simplex in zip(self.arch_params, grads, self._simplex):
                if not on_simplex:
                    p.grad = g.detach().clone()
                    continue
                # Subtracting the row max before exp changes nothing after renormalising, and cannot overflow.
                step = -self.lr * g
                step = step - step.amax(-1, keepdim=True)
                p.mul_(torch.exp(step))
                p.div_(p.sum(-1, keepdim=True))
        if self.beta_optimizer is not None:
            self.beta_optimizer.step()
            self.beta_optimizer.zero_grad(set_to_none=True)

    def state_dict(self):
        return {"beta_optimizer": self.beta_optimizer.state_dict()} if self.beta_optimizer is not None else {}

    def load_state_dict(self, state):
        if self.beta_optimizer is not None:
            self.beta_optimizer.load_state_dict(state["beta_optimizer"])


def _sgd_settings(optimizer: torch.optim.Optimizer | None) -> tuple[float, float]:
    if optimizer is None:
        return 0.0, 0.0
    group = optimizer.param_groups[0]
    return float(group.get("momentum", 0.0)), float(group.get("weight_decay", 0.0))


def build_architect(search_cfg, model: nn.Module, loss_fn: LossFn) -> Architect:
    """The architect a `SearchConfig` asks for, with the method's defaults where the config leaves them open."""
    method = search_cfg.method
    lr = search_cfg.arch_lr or ARCH_LR.get(method)
    if method == "gaea":
        return GaeaArchitect(model, loss_fn, lr=lr, single_level=search_cfg.single_level,
                             beta_weight_decay=search_cfg.arch_weight_decay)
    darts = dict(order=search_cfg.order, lr=lr, weight_decay=search_cfg.arch_weight_decay,
                 optimizer=search_cfg.arch_optimizer)
    if method == "darts":
        return DartsArchitect(model, loss_fn, **darts)
    if method == "pcdarts":
        return PCDartsArchitect(model, loss_fn, **darts)
    if method == "betadarts":
        return BetaDartsArchitect(model, loss_fn, lam=search_cfg.beta_decay, **darts)
    if method == "dartsminus":
        return DartsMinusArchitect(model, loss_fn, start=search_cfg.aux_skip, **darts)
    raise ValueError(f"search.method: {method!r} is not a continuous method; use one of {', '.join(CONTINUOUS_METHODS)}")


def warmup_epochs(search_cfg) -> int:
    """Epochs of weight-only training before alpha moves: PC-DARTS warms up 15 of 50 epochs unless told otherwise."""
    if search_cfg.warmup_epochs is not None:
        return search_cfg.warmup_epochs
    if search_cfg.method == "pcdarts" or (search_cfg.method == "gaea" and supernet_kind(search_cfg) == "pcdarts"):
        return int(round(PCDARTS_WARMUP_SHARE * search_cfg.epochs))
    return 0


def supernet_kind(search_cfg) -> str:
    """Which supernet a method runs on: PC-DARTS on its own, GAEA on either (PC-DARTS default), the others on
    DARTS's (DARTS- adds its auxiliary skip to it, see `aux_skip`)."""
    if search_cfg.method == "gaea":
        return search_cfg.supernet or "pcdarts"
    return "pcdarts" if search_cfg.method == "pcdarts" else "darts"


def aux_skip(search_cfg) -> bool:
    """Whether the supernet carries DARTS-'s auxiliary skip on every edge."""
    return search_cfg.method == "dartsminus"
