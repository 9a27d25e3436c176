"""The architecture updaters on tiny hand-made problems: the second-order hypergradient against exact autograd,
GAEA on the simplex, the per-method defaults."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from nas_core.config import SearchConfig
from nas_core.search.architect import (
    ARCH_LR, DartsArchitect, GaeaArchitect, PCDartsArchitect, build_architect, warmup_epochs,
)


class _Toy(nn.Module):
    """A two-edge 'supernet' in miniature: alpha mixes three candidate maps of a weight matrix."""

    def __init__(self, simplex: bool = False, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.w = nn.Parameter(torch.randn(4, 3, generator=g, dtype=torch.float64))
        init = torch.rand(2, 3, generator=g, dtype=torch.float64) if simplex else 1e-1 * torch.randn(2, 3, generator=g, dtype=torch.float64)
        self.alpha = nn.Parameter(init)
        self.simplex = simplex

    def arch_parameters(self):
        return [self.alpha]

    def weight_parameters(self):
        return [self.w]

    def forward(self, x):
        a = self.alpha if self.simplex else torch.softmax(self.alpha, -1)
        h = x @ self.w                                   # (n, 3)
        ops = torch.stack([h, torch.tanh(h), h * h / 4], -1)  # three candidate ops
        return (ops * a[0]).sum(-1) + (torch.sin(ops) * a[1]).sum(-1)


def _loss(model, batch):
    x, y = batch
    return ((model(x) - y) ** 2).mean()


def _batches(seed=1):
    g = torch.Generator().manual_seed(seed)
    mk = lambda: (torch.randn(8, 4, generator=g, dtype=torch.float64), torch.randn(8, 3, generator=g, dtype=torch.float64))
    return mk(), mk()


def _exact_hypergradient(model, train, val, eta, momentum=0.0, decay=0.0, buf=None):
    """d/dalpha L_val(w - eta * (grad_w L_train(w, alpha) + decay w + momentum buf), alpha), by autograd."""
    w, alpha = model.w, model.alpha
    g = torch.autograd.grad(_loss(model, train), w, create_graph=True)[0]
    step = g + decay * w + (momentum * buf if buf is not None else 0)
    w_unrolled = w - eta * step
    saved = model.w
    # Evaluate the validation loss at the unrolled weights while keeping the graph back to alpha.
    del model.w
    model.w = w_unrolled
    try:
        lv = _loss(model, val)
    finally:
        del model.w
        model.w = saved
    return torch.autograd.grad(lv, alpha)[0]


@pytest.mark.parametrize("with_momentum", [False, True])
def test_second_order_hypergradient_matches_exact_autograd(with_momentum):
    model = _Toy()
    train, val = _batches()
    eta = 0.5
    opt = torch.optim.SGD(model.weight_parameters(), lr=eta, momentum=0.9 if with_momentum else 0.0,
                          weight_decay=3e-4 if with_momentum else 0.0)
    buf = None
    if with_momentum:
        # One real optimiser step leaves a momentum buffer that the unrolled step must include.
        opt.zero_grad()
        _loss(model, train).backward()
        opt.step()
        buf = opt.state[model.w]["momentum_buffer"].clone()
    w_before = model.w.detach().clone()
    arch = DartsArchitect(model, _loss, order=2)
    approx, _ = arch.hypergradient(train, val, eta, opt)
    assert torch.equal(model.w.detach(), w_before), "the unrolled step must restore the weights"
    exact = _exact_hypergradient(model, train, val, eta, momentum=0.9 if with_momentum else 0.0,
                                 decay=3e-4 if with_momentum else 0.0, buf=buf)
    first, _ = DartsArchitect(model, _loss, order=1).hypergradient(train, val, eta, opt)
    # Central differences with a step of norm 0.01 in weight space: error O(0.01^2) times third derivatives,
    # a small fraction of the second-order term (which the first-order gradient misses entirely).
    err = (approx[0] - exact).abs().max().item()
    term = (exact - first[0]).abs().max().item()
    assert term > 1e-2, "the problem must make the second-order term matter"
    assert err < 1e-2 * term, (err, term)


def test_first_order_is_grad_alpha_of_val_loss_and_adam_moves_alpha():
    model = _Toy()
    train, val = _batches()
    arch = DartsArchitect(model, _loss, order=1, lr=1e-2)
    grads, loss = arch.hypergradient(train, val, 0.1, None)
    expected = torch.autograd.grad(_loss(model, val), model.alpha)[0]
    assert torch.allclose(grads[0], expected)
    assert loss == pytest.approx(_loss(model, val).item())
    before = model.alpha.detach().clone()
    arch.apply(grads)
    assert not torch.equal(before, model.alpha.detach())
    assert model.alpha.grad is None


@pytest.mark.parametrize("method", ["darts", "pcdarts", "betadarts", "dartsminus"])
def test_sgd_on_alpha_steps_by_the_gradient_itself(method):
    """arch_optimizer sgd: alpha <- alpha - lr (grad + wd alpha), so twice the gradient is twice the step (Adam's
    first step would be the same for both)."""
    model = _Toy()
    model.set_aux_skip_weight = lambda weight: None  # DARTS- asks its supernet for the auxiliary skip
    cfg = SearchConfig(method=method, arch_optimizer="sgd", arch_lr=0.5, arch_weight_decay=0.1)
    arch = build_architect(cfg, model, _loss)
    assert type(arch.optimizer) is torch.optim.SGD
    a0 = model.alpha.detach().clone()
    grad = torch.randn_like(a0)
    arch.apply([grad])
    torch.testing.assert_close(model.alpha.detach(), a0 - 0.5 * (grad + 0.1 * a0))


def test_gaea_refuses_sgd_and_an_unknown_optimizer_is_named():
    assert SearchConfig(method="gaea", arch_optimizer="adam").arch_optimizer == "adam"
    with pytest.raises(ValueError, match="search.arch_optimizer: gaea moves alpha by its own"):
        SearchConfig(method="gaea", arch_optimizer="sgd")
    with pytest.raises(ValueError, match="arch_optimizer"):
        SearchConfig(method="darts", arch_optimizer="rmsprop")
    with pytest.raises(ValueError, match="search.arch_optimizer must be adam or sgd"):
        DartsArchitect(_Toy(), _loss, optimizer="rmsprop")


def test_gaea_rows_stay_on_the_simplex():
    model = _Toy(simplex=True)
    arch = GaeaArchitect(model, _loss, lr=0.5)
    torch.testing.assert_close(model.alpha.sum(-1), torch.ones(2, dtype=torch.float64))
    for seed in range(30):
        train, val = _batches(seed)
        before = model.alpha.detach().clone()
        arch.step(train, val, 0.1, None)
        a = model.alpha.detach()
        assert (a > 0).all()
        torch.testing.assert_close(a.sum(-1), torch.ones(2, dtype=torch.float64), atol=1e-12, rtol=0)
    assert not torch.equal(before, a)


def test_gaea_update_is_exponentiated_gradient():
    model = _Toy(simplex=True)
    arch = GaeaArchitect(model, _loss, lr=0.3)
    a0 = model.alpha.detach().clone()
    train, val = _batches()
    grads, _ = arch.hypergradient(train, val, 0.1, None)
    arch.apply(grads)
    expected = a0 * torch.exp(-0.3 * grads[0])
    expected = expected / expected.sum(-1, keepdim=True)
    torch.testing.assert_close(model.alpha.detach(), expected)


def test_gaea_single_level_uses_the_training_batch():
    model = _Toy(simplex=True)
    train, val = _batches()
    g_single, _ = GaeaArchitect(model, _loss, single_level=True).hypergradient(train, val, 0.1, None)
    g_bilevel, _ = GaeaArchitect(model, _loss).hypergradient(train, val, 0.1, None)
    torch.testing.assert_close(g_single[0], torch.autograd.grad(_loss(model, train), model.alpha)[0])
    assert not torch.allclose(g_single[0], g_bilevel[0])


def test_gaea_rejects_negative_alpha():
    with pytest.raises(ValueError, match="simplex"):
        GaeaArchitect(_Toy(simplex=False, seed=3), _loss)


def test_method_defaults_follow_the_papers():
    model = _Toy()
    darts = build_architect(SearchConfig(method="darts"), model, _loss)
    pc = build_architect(SearchConfig(method="pcdarts"), model, _loss)
    assert type(darts) is DartsArchitect and type(pc) is PCDartsArchitect
    assert darts.optimizer.param_groups[0]["lr"] == ARCH_LR["darts"] == 3e-4
    assert pc.optimizer.param_groups[0]["lr"] == ARCH_LR["pcdarts"] == 6e-4
    assert darts.optimizer.param_groups[0]["betas"] == (0.5, 0.999)
    assert darts.optimizer.param_groups[0]["weight_decay"] == 1e-3
    assert type(darts.optimizer) is type(pc.optimizer) is torch.optim.Adam
    assert build_architect(SearchConfig(method="darts", arch_lr=0.01), model, _loss).optimizer.param_groups[0]["lr"] == 0.01
    assert warmup_epochs(SearchConfig(method="pcdarts", epochs=50)) == 15
    assert warmup_epochs(SearchConfig(method="darts", epochs=50)) == 0
    assert warmup_epochs(SearchConfig(method="pcdarts", epochs=50, warmup_epochs=2)) == 2
    with pytest.raises(ValueError, match="search.method"):
        build_architect(SearchConfig(method="random"), model, _loss)
