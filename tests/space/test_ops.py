"""The op registry: shapes at every stride, parameter overrides, allow-listed user ops."""
import sys
import textwrap

import pytest
import torch

from nas_core.space import OP_DEFAULTS, OPS, SpaceConfig, SpaceError, build_supernet, count_parameters
from nas_core.space.ops import op_spec, register_user_ops


@pytest.mark.parametrize("name", sorted(OPS))
def test_every_op_keeps_channels_and_scales_by_its_stride(name):
    x = torch.randn(2, 4, 8, 8)
    for stride, side in ((1, 8), (2, 4), (-2, 16)):
        if stride not in op_spec(name).strides:
            with pytest.raises(ValueError, match="no stride"):
                OPS[name](4, stride, True)
            continue
        y = OPS[name](4, stride, True)(x)
        assert y.shape == (2, 4, side, side), (name, stride)


def test_darts_definitions():
    sep = OPS["sep_conv_3x3"](16, 1, True)
    # Applied twice: two depthwise 3x3, two pointwise, two affine BN; no conv bias.
    assert count_parameters(sep) == 2 * (16 * 9 + 16 * 16 + 2 * 16)
    dil = OPS["dil_conv_5x5"](16, 1, True)
    assert count_parameters(dil) == 16 * 25 + 16 * 16 + 2 * 16 and dil.op[1].dilation == (2, 2)
    assert OPS["avg_pool_3x3"](4, 1, True).count_include_pad is False
    assert type(OPS["skip_connect"](4, 2, True)).__name__ == "FactorizedReduce"
    assert OP_DEFAULTS["dil_conv_3x3"] == {"kernel_size": 3, "dilation": 2}


def test_op_params_override_defaults():
    base = count_parameters(OPS["sep_conv_3x3"](8, 1, True))
    assert count_parameters(OPS["sep_conv_3x3"](8, 1, True, kernel_size=5)) == base + 2 * 8 * (25 - 9)
    with pytest.raises(ValueError, match="unknown parameter 'kernal_size'"):
        OPS["sep_conv_3x3"](8, 1, True, kernal_size=5)
    with pytest.raises(ValueError, match="odd"):
        OPS["sep_conv_3x3"](8, 1, True, kernel_size=4)


def test_supernet_uses_op_params():
    ops = ["none", "skip_connect", "sep_conv_3x3"]
    cells = {t: {"ops": ops, "nodes": 2} for t in ("normal", "down", "up")}
    small = build_supernet(SpaceConfig(cells=cells, channels=4, depth=1))
    big = build_supernet(SpaceConfig(cells=cells, channels=4, depth=1, op_params={"sep_conv_3x3": {"kernel_size": 5}}))
    assert count_parameters(big) > count_parameters(small)


def test_user_op_refused_unless_allow_listed(tmp_path, monkeypatch):
    marker = tmp_path / "imported"
    (tmp_path / "my_ops_mod.py").write_text(textwrap.dedent(f"""
        import pathlib
        pathlib.Path({str(marker)!r}).write_text("side effect")
        from torch import nn
        def build(C, stride, affine, gain=1):
            return nn.Identity() if stride == 1 else nn.AvgPool2d(2) if stride == 2 else nn.Upsample(scale_factor=2)
        build.defaults = {{"gain": 1}}
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("NASFORGE_OP_MODULES", raising=False)
    with pytest.raises(ValueError, match="not on the server's allow-list"):
        register_user_ops({"my_op": "my_ops_mod:build"})
    assert not marker.exists(), "a refused module must not even be imported"
    space = SpaceConfig(user_ops={"my_op": "my_ops_mod:build"},
                        cells={t: {"ops": ["my_op", "sep_conv_3x3"], "nodes": 2} for t in ("normal", "down", "up")})
    with pytest.raises(SpaceError, match="allow-list"):
        build_supernet(space)
    monkeypatch.setenv("NASFORGE_OP_MODULES", "my_ops_mod")
    net = build_supernet(space)
    assert marker.exists() and "my_op" in OPS and net.op_names("normal") == ["my_op", "sep_conv_3x3"]
    assert net(torch.randn(1, 3, 16, 16)).shape == (1, 2, 16, 16)
    sys.modules.pop("my_ops_mod", None)
