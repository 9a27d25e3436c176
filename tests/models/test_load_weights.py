"""Loading a user's own checkpoint: the round trip gives the same outputs, and a file that does not fit (or holds
more than tensors) is refused with the file and keys named, the model left bit for bit as it was."""
from __future__ import annotations

import collections

import pytest
import torch

from nas_core.models import PlainUNet, ResNeXtUNet, load_weights


def tiny(seed: int, **kw) -> ResNeXtUNet:
    torch.manual_seed(seed)
    return ResNeXtUNet(3, 2, **{"channels": 8, "depth": 2, "cardinality": 2, "bottleneck_width": 2, **kw}).eval()


def snapshot(m: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in m.state_dict().items()}


def assert_unchanged(m: torch.nn.Module, before: dict[str, torch.Tensor]) -> None:
    after = m.state_dict()
    assert after.keys() == before.keys() and all(torch.equal(after[k], before[k]) for k in before)


@pytest.mark.parametrize("wrap", ["plain", "model", "state_dict", "ddp"])
def test_round_trip(tmp_path, wrap):
    src = tiny(0)
    src.train()(torch.randn(2, 3, 32, 32))  # move the BatchNorm running stats off their init
    src.eval()
    sd = src.state_dict()
    saved = {"plain": sd, "model": {"model": sd, "epoch": 3}, "state_dict": {"state_dict": sd},
             "ddp": collections.OrderedDict(("module." + k, v) for k, v in sd.items())}[wrap]
    path = tmp_path / "mine.pt"
    torch.save(saved, path)
    dst = tiny(1)
    x = torch.randn(1, 3, 33, 32)
    assert not torch.equal(dst(x), src(x))
    assert load_weights(dst, path) is dst
    assert torch.equal(dst(x), src(x))


def test_mismatched_checkpoint_is_refused_and_loads_nothing(tmp_path):
    path = tmp_path / "other.pt"
    torch.save(tiny(0, cardinality=4, depth=1).state_dict(), path)
    dst = tiny(1)
    before = snapshot(dst)
    with pytest.raises(ValueError) as e:
        load_weights(dst, path)
    msg = str(e.value)
    assert str(path) in msg and "nothing was loaded" in msg
    # depth 1 lacks encoder.1; level 1's group width is 2*2, so 4 groups make its inner convs 16 wide, 2 groups 8
    assert "missing" in msg and "encoder.1." in msg
    assert "shape mismatch" in msg and "encoder.0.0.conv1.weight (16, 8, 1, 1) in the file, (8, 8, 1, 1) in the model" in msg
    assert_unchanged(dst, before)


class _NotATensor:
    pass


def test_pickled_objects_and_other_files_are_refused(tmp_path):
    dst = tiny(1)
    before = snapshot(dst)
    code = tmp_path / "code.pt"
    torch.save({"model": _NotATensor()}, code)
    with pytest.raises(ValueError, match="weights_only=True"):
        load_weights(dst, code)
    other = tmp_path / "other.pt"
    torch.save({"lr": 0.1}, other)
    with pytest.raises(ValueError, match="expected a state_dict"):
        load_weights(dst, other)
    with pytest.raises(FileNotFoundError, match="absent.pt"):
        load_weights(dst, tmp_path / "absent.pt")
    assert_unchanged(dst, before)


def test_works_for_the_plain_unet_too(tmp_path):
    torch.manual_seed(0)
    src = PlainUNet(3, 2, channels=4, depth=1)
    torch.save(src.state_dict(), tmp_path / "p.pt")
    torch.manual_seed(1)
    dst = load_weights(PlainUNet(3, 2, channels=4, depth=1), tmp_path / "p.pt")
    assert all(torch.equal(a, b) for a, b in zip(src.state_dict().values(), dst.state_dict().values()))
