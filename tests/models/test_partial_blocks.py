"""The backbones of a partial search as data: their extra arguments are their constructors', the schema derives
one cell type per marked role, and a plain-U-Net partial supernet freezes what it should and nothing else."""
from __future__ import annotations

import inspect

import pytest
import torch

import nas_core.models
from nas_core.models.blocks import BACKBONES
from nas_core.space import SpaceError, build_supernet
from nas_core.space.config import SpaceConfig

SPACE_OWNED = {"self", "in_channels", "num_classes", "channels", "depth"}


@pytest.mark.parametrize("macro", sorted(BACKBONES))
def test_backbone_arguments_are_the_constructors_own(macro):
    spec = BACKBONES[macro]
    params = inspect.signature(getattr(nas_core.models, spec.model).__init__).parameters
    assert set(spec.args) == set(params) - SPACE_OWNED


def test_cell_types_default_to_the_marked_roles():
    space = SpaceConfig(macro="plain-unet", depth=2, search_blocks=["up.0", "down.1"])
    assert set(space.cells) == {"down", "up"}


def test_frozen_blocks_are_out_of_the_optimiser_and_keep_their_statistics(tmp_path):
    torch.manual_seed(0)
    net = nas_core.models.PlainUNet(3, 2, channels=4, depth=1)
    torch.save(net.state_dict(), tmp_path / "plain.pt")
    space = SpaceConfig(macro="plain-unet", channels=4, depth=1, search_blocks=["up.0"], init_from=str(tmp_path / "plain.pt"),
                        freeze=True, cells={"up": {"nodes": 2, "ops": ["skip_connect", "sep_conv_3x3"]}})
    sn = build_supernet(space).train()
    trained = {id(p) for p in sn.weight_parameters()}
    assert trained == {id(p) for p in sn.cells.parameters()}  # the cell only: stem, down.0 and head are frozen
    assert not sn.backbone.stem.training and not sn.backbone.head.training and sn.cells[0].training
    sn(torch.randn(2, 3, 16, 16))
    assert torch.equal(sn.backbone.stem[1].running_mean, net.stem[1].running_mean)
    with pytest.raises(SpaceError, match=r"input \(15, 15\): a searched down or up block .* divisible by 2"):
        sn(torch.randn(1, 3, 15, 15))
    with pytest.raises(RuntimeError, match="block up.0 is a searched cell's place"):
        sn.backbone(torch.randn(1, 3, 16, 16))
