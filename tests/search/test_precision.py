"""`compute:` (nas_core.train.precision) against float32 on the real search and retrain, on the CPU: bfloat16
autocast and channels_last follow float32's loss and alpha over a few steps within the tolerances stated here;
alpha, its gradient and its softmax stay float32 under autocast; the DARTS central difference runs in float32;
torch.compile applies to the weight step only and follows float32 (see the two compile tests for their backends).
The CUDA paths are the same code on another device type; their figures wait for a GPU (bench/gpu.sh)."""
from __future__ import annotations

import pytest
import torch

from nas_core.config import parse_experiment
from nas_core.search.loop import BilevelSearch
from nas_core.search.reporting import EventSink
from nas_core.train.precision import resolve_precision
from tests.search.conftest import tiny_experiment

# bfloat16 keeps 8 bits of mantissa (relative rounding 2^-8 = 0.4%); over a few steps of a tiny supernet the loss
# stays within 3% and alpha's movement points the same way (cosine of the alpha updates >= 0.9).
BF16_LOSS_RTOL = 0.03
BF16_ALPHA_COSINE = 0.9
# channels_last is float32 in another memory order: only the order of the sums differs, which Adam's division by
# sqrt(v) of tiny alpha gradients magnifies to a few 1e-6 (one alpha step is arch_lr = 3e-4).
CL_LOSS_RTOL, CL_ALPHA_ATOL = 1e-4, 2e-5
# torch.compile keeps float32 but may fuse and reorder sums (inductor) and decomposes ops (AOTAutograd): the same
# order-of-summation bound as channels_last.
COMPILE_LOSS_RTOL, COMPILE_ALPHA_ATOL = 1e-4, 2e-5


def _cfg(compute: dict, data: dict | None = None, **search):
    body = tiny_experiment(epochs=1, **search)
    body["compute"] = compute
    body["data"].update(data or {})
    return parse_experiment(body)


def _trajectory(tmp_path, compute: dict, before=None, data=None, **search):
    """Loss and alpha after every step of one short search epoch, and the search itself; `before(search)` runs
    ahead of the first step."""
    torch.manual_seed(0)
    cfg = _cfg(compute, data, **search)
    losses, alphas = [], []
    with EventSink(tmp_path / f"events-{len(list(tmp_path.iterdir()))}.jsonl", heartbeat_s=0) as events:
        search_ = BilevelSearch(cfg, events, tmp_path / "last.pt", device="cpu")
        if before is not None:
            before(search_)
        alpha0 = torch.cat([p.detach().flatten().clone() for p in search_.model.arch_parameters()])

        def on_step(info):
            losses.append(info["loss"])
            alphas.append(torch.cat([p.detach().flatten().clone() for p in search_.model.arch_parameters()]))

        search_.on_step = on_step
        search_._started, search_._done_at_start = 0.0, 0.0
        search_._train_epoch(0)
    return search_, torch.tensor(losses), torch.stack(alphas) - alpha0


@pytest.fixture(scope="module")
def float32_run(tmp_path_factory):
    return _trajectory(tmp_path_factory.mktemp("fp32"), {"amp": "off", "channels_last": "off"})


def _cosine(a, b):
    return float(torch.nn.functional.cosine_similarity(a.flatten(), b.flatten(), dim=0))


def test_auto_is_float32_on_cpu_and_bf16_channels_last_on_cuda():
    cfg = _cfg({})
    assert resolve_precision(cfg.compute, "cpu").is_plain
    cuda = resolve_precision(cfg.compute, "cuda")
    assert cuda.amp is torch.bfloat16 and cuda.channels_last and not cuda.compile
    import yaml

    on = parse_experiment({"name": "x", "compute": yaml.safe_load("{channels_last: on, amp: off}")}).compute
    assert on.channels_last == "on" and on.amp == "off"  # YAML's bare on/off are booleans


def test_bf16_autocast_follows_float32_and_alpha_stays_float32(tmp_path, float32_run):
    _, loss32, alpha32 = float32_run
    search, loss16, alpha16 = _trajectory(tmp_path, {"amp": "bf16", "channels_last": "off"})
    assert search.precision.amp is torch.bfloat16
    assert len(loss16) == len(loss32) >= 2
    assert torch.allclose(loss16, loss32, rtol=BF16_LOSS_RTOL), (loss16, loss32)
    assert not torch.equal(loss16, loss32)  # autocast did change the arithmetic
    assert _cosine(alpha16, alpha32) >= BF16_ALPHA_COSINE
    model = search.model
    for p in model.arch_parameters():
        assert p.dtype == torch.float32
    # Under autocast the convolutions run in bfloat16 while alpha's softmax and the loss stay float32.
    seen = []
    conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    handle = conv.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    batch = next(iter(search.train_loader))
    with search.precision.autocast():
        weights = model.arch_weights()
    loss = search.loss_fn(model, batch)
    handle.remove()
    assert seen == [torch.bfloat16] and loss.dtype == torch.float32
    assert all(w.dtype == torch.float32 for w in weights.values())
    grads = torch.autograd.grad(loss, model.arch_parameters(), allow_unused=True)
    assert all(g is None or g.dtype == torch.float32 for g in grads)


def test_channels_last_matches_float32(tmp_path, float32_run):
    _, loss32, alpha32 = float32_run
    with pytest.raises(ValueError, match="compute.channels_last"):
        resolve_precision(_cfg({"channels_last": "on"}).compute, "cpu")  # oneDNN's backward corrupts memory
    # The same code with the native CPU kernels (oneDNN off), as it runs on CUDA with cuDNN.
    with torch.backends.mkldnn.flags(enabled=False):
        search, loss_cl, alpha_cl = _trajectory(tmp_path, {"amp": "off", "channels_last": "on"})
    conv = next(m for m in search.model.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size != (1, 1))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(loss_cl, loss32, rtol=CL_LOSS_RTOL)
    assert torch.allclose(alpha_cl, alpha32, atol=CL_ALPHA_ATOL)


@pytest.mark.slow
def test_compiled_weight_step_follows_float32_and_the_architect_stays_eager(tmp_path, monkeypatch):
    """compute.compile on the tiny search: the weight step's forward is one captured graph (no graph break),
    every forward of the architecture step runs eagerly, and loss and alpha follow the eager float32 run.

    Backend: NOT production's inductor but torch's `aot_eager` (the same dynamo capture and AOTAutograd forward
    and backward graphs inductor receives, run with eager kernels), wrapped to count the graphs. Inductor's
    C++ code generation for even this 4-channel supernet takes minutes on the 2-core CPU (docs/benchmarks.md,
    `python -m bench compile_step`); the real inductor backend is checked on one node's MixedOps below."""
    from nas_core.train import precision as precision_mod

    graphs, compiled_runs = [], []
    aot_eager = torch._dynamo.lookup_backend("aot_eager")

    def counting_aot_eager(gm, example_inputs):
        graphs.append(gm)
        run = aot_eager(gm, example_inputs)

        def counted(*args):
            compiled_runs.append(phase[0])
            return run(*args)

        return counted

    monkeypatch.setattr(precision_mod, "COMPILE_BACKEND", counting_aot_eager)
    forwards, phase = [], ["none"]

    def in_phase(name, fn):
        def run(*args, **kw):
            phase[0] = name
            return fn(*args, **kw)
        return run

    def eager_forward(module, args):
        # Traced by dynamo as a no-op (a list mutation inside the graph would be replayed and guarded on).
        if not torch.compiler.is_compiling():
            forwards.append(phase[0])

    def watch(search):
        search.model.register_forward_pre_hook(eager_forward)
        search._weight_step = in_phase("weights", search._weight_step)
        search.architect.step = in_phase("arch", search.architect.step)

    # Batches of 3 of the 6 weight-half tiles: no partial last batch, whose new shape would compile a second
    # graph (with a dynamic batch dimension; docs/search.md).
    data = {"batch_size": 3}
    _, loss32, alpha32 = _trajectory(tmp_path, {"amp": "off", "channels_last": "off"}, data=data)
    torch._dynamo.reset()
    try:
        search, loss_c, alpha_c = _trajectory(tmp_path, {"amp": "off", "channels_last": "off", "compile": True},
                                              before=watch, data=data)
    finally:
        torch._dynamo.reset()
    assert search.precision.compile and len(loss_c) == len(loss32) >= 2
    steps = len(loss_c)
    # Each weight step ran one captured graph (a graph break would run two per step), each architecture step
    # (DARTS first order: one forward) ran eagerly.
    assert compiled_runs == ["weights"] * steps, compiled_runs
    assert forwards == ["arch"] * steps, forwards
    assert [len(images) for images, _ in search.train_loader] == [3, 3] and len(graphs) == 1, len(graphs)
    assert torch.allclose(loss_c, loss32, rtol=COMPILE_LOSS_RTOL), (loss_c, loss32)
    assert torch.allclose(alpha_c, alpha32, atol=COMPILE_ALPHA_ATOL), (alpha_c - alpha32).abs().max()


@pytest.mark.slow
def test_inductor_computes_one_node_of_mixed_ops_as_eager_does():
    """The production backend, inductor, with the CPU options of nas_core.train.precision, on the supernet's
    smallest unit: the MixedOps of the 2 edges leaving one node (EdgeGroup: batched sep_conv_3x3, a shared pool,
    skip, none; 4 channels, 8 px) through `Precision.wrap(compiled=True)`. Its output and the gradients of its
    weights and of the mixing weights (softmax of alpha) agree with eager. A whole supernet or decoded network
    does not compile in a test's time on this CPU (minutes: docs/benchmarks.md)."""
    from nas_core.space.mixed_op import EdgeGroup
    from nas_core.train.precision import Precision

    torch.manual_seed(0)
    group = EdgeGroup(["none", "max_pool_3x3", "skip_connect", "sep_conv_3x3"], 4, 1, 2, {}).train()
    x = torch.randn(2, 4, 8, 8)
    alpha = torch.randn(2, 4, requires_grad=True)
    target = torch.randn(2, 2, 4, 8, 8)
    params = list(group.parameters()) + [alpha]

    def grads(net):
        out = net(x, torch.softmax(alpha, -1))
        return [out.detach()] + list(torch.autograd.grad((out * target).sum(), params))

    eager = grads(group)
    torch._dynamo.reset()
    try:
        compiled = grads(Precision("cpu", compile=True).wrap(group, compiled=True))
    finally:
        torch._dynamo.reset()
    assert len(eager) == len(compiled) == len(params) + 1
    for e, c in zip(eager, compiled):
        assert torch.allclose(c, e, rtol=COMPILE_LOSS_RTOL, atol=1e-5), (c - e).abs().max()


def test_darts_second_order_difference_runs_in_float32(tmp_path):
    search, losses, _ = _trajectory(tmp_path, {"amp": "bf16"}, method="darts", order=2)
    assert torch.isfinite(losses).all()
    autocast_on = []
    conv = next(m for m in search.model.modules() if isinstance(m, torch.nn.Conv2d))
    conv.register_forward_hook(lambda m, i, o: autocast_on.append((torch.is_autocast_enabled("cpu"), o.dtype)))
    batch = next(iter(search.train_loader))
    search.architect.step(batch, batch, 0.025, search.w_optimizer)
    # The unrolled-weights and validation forwards in bfloat16, then the last two, at w+ and w-, in float32.
    assert autocast_on[-2:] == [(False, torch.float32)] * 2, autocast_on
    assert len(autocast_on) >= 4 and set(autocast_on[:-2]) == {(True, torch.bfloat16)}, autocast_on


def test_retrain_under_bf16_follows_float32():
    from nas_core.data.datasets import build_datasets
    from nas_core.models.plain_unet import PlainUNet
    from nas_core.train.retrain import train_and_evaluate

    cfg = _cfg({"amp": "bf16"})
    datasets = build_datasets(cfg.data, 0)
    runs = {}
    for amp in ("off", "bf16"):
        torch.manual_seed(0)
        model = PlainUNet(3, 2, channels=4, depth=1)
        runs[amp] = train_and_evaluate(model, datasets, 1, 0.05, batch_size=4, device="cpu", max_steps=3,
                                       eval_split="val", compute=_cfg({"amp": amp}).compute)
    a, b = runs["off"]["history"][0]["loss"], runs["bf16"]["history"][0]["loss"]
    assert abs(a - b) <= BF16_LOSS_RTOL * abs(a) and a != b


def test_bf16_backward_through_the_default_ops():
    """The default op set's 5x5 convs go through a custom backward (nas_core.space.mixed_op._LargeDepthwise) that
    must take bfloat16 gradients against float32 saved inputs."""
    from nas_core.search.loop import build_search_supernet, search_loss

    cfg = parse_experiment({"name": "ops", "space": {"channels": 4, "depth": 1}, "compute": {"amp": "bf16"}})
    model = build_search_supernet(cfg)
    precision = resolve_precision(cfg.compute, "cpu")
    batch = (torch.randn(2, 3, 16, 16), torch.randint(0, 2, (2, 16, 16)))
    loss = precision.loss(search_loss)(model, batch)
    grads = torch.autograd.grad(loss, list(model.parameters()), allow_unused=True)
    assert all(g is None or (g.dtype == torch.float32 and torch.isfinite(g).all()) for g in grads)
    assert any(g is not None and g.abs().sum() > 0 for g in grads)
