"""The helicopter generator: deterministic by seed, tile i independent of the data set's length, sane masks."""
import torch

from nas_core.data import HelicopterTiles, make_helicopter_tiles


def test_deterministic_by_seed_and_shapes():
    x1, m1 = make_helicopter_tiles(6, 48, seed=3)
    x2, m2 = make_helicopter_tiles(6, 48, seed=3)
    x3, _ = make_helicopter_tiles(6, 48, seed=4)
    assert x1.shape == (6, 3, 48, 48) and x1.dtype == torch.float32
    assert m1.shape == (6, 48, 48) and m1.dtype == torch.int64
    assert torch.equal(x1, x2) and torch.equal(m1, m2)
    assert not torch.equal(x1, x3)
    assert 0 <= float(x1.min()) and float(x1.max()) <= 1


def test_tile_does_not_depend_on_length():
    a = HelicopterTiles(3, 32, seed=1)[2]
    b = HelicopterTiles(10, 32, seed=1)[2]
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_masks_are_binary_with_both_empty_and_populated_tiles():
    _, masks = make_helicopter_tiles(40, 64, seed=0)
    assert set(masks.unique().tolist()) <= {0, 1}
    per_tile = masks.flatten(1).sum(1)
    assert (per_tile == 0).any(), "some tiles should hold no helicopter"
    assert (per_tile > 0).sum() >= 20, "most tiles should hold a helicopter"
    share = float(masks.float().mean())
    assert 0.005 < share < 0.3


def test_helicopters_differ_from_background():
    # The labelled pixels must be distinguishable: their colour statistics differ from the ground's.
    x, m = make_helicopter_tiles(20, 64, seed=5)
    fg = x.permute(1, 0, 2, 3)[:, m.bool()]
    bg = x.permute(1, 0, 2, 3)[:, ~m.bool()]
    assert (fg.mean(1) - bg.mean(1)).abs().max() > 0.02 or fg.std(1).mean() > bg.std(1).mean()
