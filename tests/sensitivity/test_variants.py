"""The variants sensitivity fine-tunes, without training: an ablation is an identity where the shapes allow and a
trainable re-initialised copy elsewhere; a random cell of each role fits its block's call and shape; the Borda
positions of rank.py (ties share, 1 = most room)."""
from __future__ import annotations

import random

import pytest
import torch

from nas_core.models import ResNeXtUNet
from nas_core.sensitivity.ablation import Identity, ablated
from nas_core.sensitivity.rank import _positions, rank_blocks
from nas_core.sensitivity.replacement import CellInPlace, cell_space, replaced


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    model = ResNeXtUNet(3, 2, channels=4, depth=2, cardinality=2, bottleneck_width=1).requires_grad_(False)
    return model.eval()


def test_ablation_identity_or_reinitialised(net):
    specs = {s.name: s for s in net.blocks()}
    a, how = ablated(net, specs["bottleneck"], seed=1)
    assert how == "identity" and isinstance(a.get_submodule("bottleneck"), Identity)
    a, how = ablated(net, specs["encoder.1"], seed=1)
    old, new = net.get_submodule("encoder.1"), a.get_submodule("encoder.1")
    assert how == "reinitialised" and type(new) is type(old)
    assert all(p.requires_grad for p in new.parameters())  # the copy trains even where the original was frozen
    assert not torch.equal(old[0].conv1.weight, new[0].conv1.weight)
    assert not any(p.requires_grad for p in net.parameters())  # the model itself is untouched
    assert a(torch.rand(2, 3, 16, 16)).shape == (2, 2, 16, 16)


@pytest.mark.parametrize("name", ["stem", "encoder.0", "bottleneck", "decoder.0", "decoder.1"])
def test_random_cell_takes_the_blocks_place(net, name):
    spec = next(s for s in net.blocks() if s.name == name)
    x = torch.rand(2, 3, 16, 16)
    model, genotype = replaced(net, spec, cell_space(spec, nodes=2), random.Random(0), seed=0)
    assert isinstance(model.get_submodule(name), CellInPlace)
    assert len(genotype.concat) * (spec.out_channels // len(genotype.concat)) == spec.out_channels
    assert model.eval()(x).shape == (2, 2, 16, 16)


def test_borda_positions_and_rank():
    assert _positions([0.3, 0.1, 0.2], larger_is_room=True) == [1.0, 0.0, 0.5]
    assert _positions([0.0, 0.0, 0.2], larger_is_room=False) == [0.75, 0.75, 0.0]
    ranked = rank_blocks([{"name": "a", "gain": 0.0, "drop": 0.1, "taylor_share": 0.5},
                          {"name": "b", "gain": 0.1, "drop": 0.0, "taylor_share": 0.0},
                          {"name": "c", "gain": -0.1, "drop": 0.2, "taylor_share": 0.5}])
    assert [(r["name"], r["rank"]) for r in ranked] == [("b", 1), ("a", 2), ("c", 3)]
    # c is last on gain and drop; its importance ties a's (both last two, so both at position 0.25).
    assert ranked[0]["score"] == 1.0 and ranked[-1]["score"] == pytest.approx(0.25 / 3, abs=1e-6)
