"""The supernet: equal to the plain reference MixedOp, to the inheriting discrete network under one-hot alpha,
PC-DARTS's partial channels and edge weights, GAEA's simplex alpha, and DARTS's decode rule."""
import random

import pytest
import torch
import torch.nn.functional as F

from bench.reference_mixed_op import ReferenceSupernet
from nas_core.space import (CellGraph, SpaceConfig, build_network, build_supernet, decode, genotype_to_graph,
                            inherit_weights, sample_genotype)
from nas_core.space.mixed_op import EdgeGroup, channel_shuffle
from nas_core.space.ops import OPS, op_spec

CONV_SKIP = ["none", "skip_connect", "sep_conv_3x3", "dil_conv_5x5", "conv_3x3"]


def _one_hot(supernet, genotype):
    with torch.no_grad():
        for t, a in supernet.alphas().items():
            ops = supernet.op_names(t)
            a.zero_()
            a[:, ops.index("none")] = 1
            for op, s, d in genotype.cells[t].pairs():
                e = supernet.graphs[t].edge_index(s, d)
                a[e] = 0
                a[e, ops.index(op)] = 1


@pytest.mark.parametrize("macro", ["unet", "darts-classifier"])
def test_one_hot_supernet_equals_inheriting_network(macro):
    torch.manual_seed(0)
    up_ops = CONV_SKIP + ["trans_conv_3x3"]
    if macro == "unet":
        space = SpaceConfig(channels=4, depth=2, cells={"normal": {"ops": CONV_SKIP}, "down": {"ops": CONV_SKIP},
                                                        "up": {"ops": up_ops}})
    else:
        space = SpaceConfig(macro="darts-classifier", channels=4, layers=5,
                            cells={"normal": {"ops": CONV_SKIP}, "reduce": {"ops": CONV_SKIP}})
    x = torch.randn(2, 3, 16, 16)
    rng = random.Random(3)
    for _ in range(2):
        supernet = build_supernet(space, alpha_mode="simplex")
        g = sample_genotype(space, rng)
        _one_hot(supernet, g)
        supernet(x)  # one training step's BN statistics, so that eval mode compares non-trivial running stats
        net = inherit_weights(build_network(g, space), supernet)
        for mode in ("train", "eval"):
            supernet.train(mode == "train")
            net.train(mode == "train")
            a, b = supernet(x), net(x)
            assert torch.allclose(a, b, atol=1e-4, rtol=1e-4), (mode, (a - b).abs().max())
        # Something was inherited: a fresh network differs.
        fresh = build_network(g, space).eval()
        assert not torch.allclose(fresh(x), b, atol=1e-3)


@pytest.mark.parametrize("alpha_mode", ["softmax", "simplex"])
def test_supernet_equals_reference_mixed_op(alpha_mode):
    torch.manual_seed(1)
    space = SpaceConfig(channels=4, depth=2)
    fast = build_supernet(space, alpha_mode=alpha_mode)
    with torch.no_grad():
        for a in fast.alphas().values():
            a.copy_(torch.rand_like(a) if alpha_mode == "softmax" else F.normalize(torch.rand_like(a), p=1, dim=-1))
    ref = ReferenceSupernet(fast)
    x, y = torch.randn(2, 3, 16, 16), torch.randint(0, 2, (2, 16, 16))
    grads = []
    for model in (fast, ref):
        fast.zero_grad(set_to_none=True)
        ref.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        grads.append((loss.item(), {t: a.grad.clone() for t, a in fast.alphas().items()}, fast.stem[0].weight.grad
                      if model is fast else ref.stem[0].weight.grad))
    (l1, a1, s1), (l2, a2, s2) = grads
    assert abs(l1 - l2) < 1e-5
    for t in a1:
        assert torch.allclose(a1[t], a2[t], atol=1e-5), t
    assert torch.allclose(s1, s2, atol=1e-5)


@pytest.mark.parametrize("stride", [1, 2, -2])
def test_partial_channels_and_edge_weights_match_pc_darts(stride):
    torch.manual_seed(2)
    ops = ["none", "max_pool_3x3", "skip_connect", "sep_conv_3x3", "dil_conv_3x3"]
    C, K, E = 8, 2, 3
    group = EdgeGroup(ops, C, stride, E, {}, pc_k=K)
    x = torch.randn(2, C, 8, 8)
    w, beta = F.softmax(torch.randn(E, len(ops)), -1), F.softmax(torch.randn(E), 0)
    got = group(x, w, beta)
    for k in range(E):
        # PC-DARTS's MixedOp for edge k, op by op, with the edge's weights loaded into stand-alone ops.
        xt, rest = x[:, : C // K], x[:, C // K:]
        total = 0
        for o, name in enumerate(ops):
            op = OPS[name](C // K, stride, False)
            if op_spec(name).pool:
                op = torch.nn.Sequential(op, torch.nn.BatchNorm2d(C // K, affine=False))
            op.load_state_dict({**op.state_dict(), **group.edge_state_dict(name, k)})
            total = total + w[k, o] * op(xt)
        if stride == 2:
            rest = F.max_pool2d(rest, 2, 2)
        elif stride == -2:
            rest = F.interpolate(rest, scale_factor=2, mode="bilinear", align_corners=False)
        want = beta[k] * channel_shuffle(torch.cat([total, rest], 1), K)
        assert torch.allclose(got[:, k], want, atol=1e-5), (stride, k)


def test_pc_darts_supernet_trains_alpha_and_beta():
    net = build_supernet(SpaceConfig(channels=8, depth=1), pc_k=4, edge_norm=True)
    assert set(net.betas()) == {"normal", "down", "up"} and len(net.arch_parameters()) == 6
    out = net(torch.randn(2, 3, 16, 16))
    out.mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.arch_parameters())
    weights = {id(p) for p in net.weight_parameters()}
    assert not weights & {id(p) for p in net.arch_parameters()}
    assert len(weights) + 6 == len(list(net.parameters()))
    nb = net.normalized_betas()["normal"]
    g = net.graphs["normal"]
    for j in g.intermediate:
        assert torch.isclose(nb[g.incoming(j)].sum(), torch.tensor(1.0))


def test_simplex_alpha_is_used_directly_and_labels():
    net = build_supernet(SpaceConfig(channels=4, depth=1), alpha_mode="simplex")
    a = net.alphas()["down"]
    assert a.shape == (14, 8) and torch.allclose(a.sum(-1), torch.ones(14))
    assert net.arch_weights()["down"] is a
    assert net.edge_names("down")[:3] == ["0->2", "1->2", "0->3"] and net.op_names("down")[0] == "none"
    assert net.betas() == {}


def test_decode_follows_darts_rule():
    space = SpaceConfig(macro="darts-classifier")
    ops = space.cells["normal"].ops
    g = CellGraph.from_config(space.cells["normal"])
    w = torch.full((14, len(ops)), 0.01)
    w[:, ops.index("none")] = 0.9  # `none` never wins
    w[g.edge_index(1, 2), ops.index("sep_conv_5x5")] = 0.5
    w[g.edge_index(0, 2), ops.index("max_pool_3x3")] = 0.3
    w[g.edge_index(2, 5), ops.index("dil_conv_3x3")] = 0.4
    w[g.edge_index(4, 5), ops.index("skip_connect")] = 0.2
    w[g.edge_index(0, 5), ops.index("avg_pool_3x3")] = 0.3
    geno = decode({"normal": w, "reduce": w}, space)
    assert geno.cells["normal"].nodes[0] == (("sep_conv_5x5", 1), ("max_pool_3x3", 0))
    assert geno.cells["normal"].nodes[3] == (("dil_conv_3x3", 2), ("avg_pool_3x3", 0))
    # PC-DARTS edge weights multiply in: a heavy beta on (4, 5) lifts skip_connect above avg_pool on (0, 5).
    beta = torch.ones(14)
    beta[g.edge_index(4, 5)] = 2.0
    geno = decode({"normal": w, "reduce": w}, space, betas={"normal": beta, "reduce": beta})
    assert geno.cells["normal"].nodes[3] == (("dil_conv_3x3", 2), ("skip_connect", 4))


def test_supernet_genotype_and_graph():
    net = build_supernet(SpaceConfig(channels=4, depth=1))
    with torch.no_grad():
        net.alphas()["normal"][:, net.op_names("normal").index("sep_conv_5x5")] += 5.0
    g = net.genotype()
    assert all(op == "sep_conv_5x5" for node in g.cells["normal"].nodes for op, _ in node)
    graph = genotype_to_graph(g)
    assert graph.nodes["normal:0"]["kind"] == "input" and graph.nodes["up:out"]["kind"] == "output"
    ops = [d["op"] for _, v, d in graph.edges(data=True) if v.startswith("normal:") and d["op"] != "concat"]
    assert ops == ["sep_conv_5x5"] * 8
    assert all("pos" in d for _, d in graph.nodes(data=True))


@pytest.mark.parametrize("k, stride, dilation, side", [(3, 1, 2, 8), (5, 1, 2, 8), (3, 2, 2, 8), (5, 2, 2, 8),
                                                       (5, 1, 1, 8), (7, 1, 1, 6), (5, 1, 2, 7), (5, 2, 1, 9)])
def test_depthwise_rewrites_are_exact(k, stride, dilation, side):
    from nas_core.space.mixed_op import _depthwise

    torch.manual_seed(k + stride + side)
    x = torch.randn(2, 6, side, side, requires_grad=True)
    w = torch.randn(6, 1, k, k, requires_grad=True)
    pad = dilation * (k - 1) // 2
    want = F.conv2d(x, w, None, stride, pad, dilation, 6)
    got = _depthwise(x, w, stride, pad, dilation, 6)
    assert torch.allclose(got, want, atol=1e-5)
    go = torch.randn_like(want)
    for a, b in zip(torch.autograd.grad(want, (x, w), go), torch.autograd.grad(got, (x, w), go)):
        assert torch.allclose(a, b, atol=1e-4)
