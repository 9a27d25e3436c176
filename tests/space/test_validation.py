"""Invalid spaces fail with messages that name the node, edge or op and the fix."""
import pytest
from pydantic import ValidationError

from nas_core.config import ConfigError, parse_experiment
from nas_core.space import CellGraph, SpaceConfig, SpaceError, build_supernet
from nas_core.space.config import CellSpaceConfig


@pytest.mark.parametrize("cell, message", [
    ({"nodes": 3, "edges": [(0, 2), (2, 3), (3, 4), (4, 2)]}, r"cycle 2 -> 3 -> 4 -> 2"),
    ({"nodes": 3, "edges": [(0, 2), (1, 3), (4, 3)]}, r"node 4 is unreachable from the inputs \(0, 1\); add an edge into it"),
    ({"nodes": 3, "edges": [(0, 2), (1, 3), (0, 4)], "concat": [2, 4]}, r"node 3 does not reach the output"),
    ({"nodes": 2, "edges": [(0, 2), (1, 7)]}, r"edges\[1\] \(1, 7\) names node 7, but the cell has nodes 0-3"),
    ({"nodes": 2, "edges": [(2, 1), (0, 2)]}, r"ends at input node 1"),
    ({"ops": []}, r"ops is empty"),
    ({"ops": ["none"]}, r"only 'none'"),
    ({"nodes": 2, "concat": [5]}, r"concat names node 5"),
])
def test_bad_topologies(cell, message):
    with pytest.raises(ValidationError, match=message):
        CellSpaceConfig(**cell)


def test_experiment_form_names_the_field():
    with pytest.raises(ConfigError, match=r"space.cells.up.*node 3 is unreachable"):
        parse_experiment({"name": "x", "space": {"cells": {"normal": {}, "down": {}, "up": {"nodes": 2, "edges": [[0, 2]]}}}})


def test_unknown_op_names_cell_and_fix():
    space = SpaceConfig(cells={"normal": {"ops": ["sep_conv_9x9"]}, "down": {}, "up": {}})
    with pytest.raises(SpaceError, match=r"space.cells.normal.ops: unknown op 'sep_conv_9x9'.*user_ops"):
        build_supernet(space)


def test_stride_conflict_names_edge():
    # A transposed conv upsamples; a down cell's input edges halve.
    space = SpaceConfig(cells={"normal": {}, "down": {"ops": ["trans_conv_3x3", "skip_connect"]}, "up": {}})
    with pytest.raises(SpaceError, match=r"cells.down: op 'trans_conv_3x3' on edge \(0, 2\) \(stride 2\)"):
        build_supernet(space)


def test_shape_conflict_from_op_params():
    space = SpaceConfig(op_params={"max_pool_3x3": {"kernel_size": 4}})
    with pytest.raises(SpaceError, match=r"op 'max_pool_3x3'.*kernel_size must be odd"):
        build_supernet(space)
    with pytest.raises(SpaceError, match=r"op_params.sep_conv_3x3: unknown parameter 'size'"):
        build_supernet(SpaceConfig(op_params={"sep_conv_3x3": {"size": 4}}))
    with pytest.raises(SpaceError, match=r"op_params.sepconv: no op named"):
        build_supernet(SpaceConfig(op_params={"sepconv": {}}))


def test_macro_needs_its_cell_types():
    with pytest.raises(ValidationError, match=r"macro 'unet' needs cell types normal, down, up; add cells.up"):
        SpaceConfig(cells={"normal": {}, "down": {}})
    with pytest.raises(ValidationError, match=r"cells.reduce: macro 'unet' has no 'reduce' cells"):
        SpaceConfig(cells={"normal": {}, "down": {}, "up": {}, "reduce": {}})
    assert set(SpaceConfig(macro="darts-classifier").cells) == {"normal", "reduce"}


def test_pc_k_must_divide_channels():
    with pytest.raises(SpaceError, match=r"pc_k=3: cell 0 \(down\) has 16 channels, not divisible by 3"):
        build_supernet(SpaceConfig(), pc_k=3)


def test_explicit_topology_builds():
    cfg = CellSpaceConfig(nodes=3, edges=[(0, 2), (1, 2), (2, 3), (1, 4), (3, 4)], concat=[4])
    g = CellGraph.from_config(cfg)
    assert g.incoming(4) == [3, 4] and g.topological_order() == [0, 1, 2, 3, 4]


def test_schema_validation_does_not_import_torch():
    # The API validates experiment bodies with this schema; it should not pay for torch.
    import subprocess
    import sys

    code = ("import sys, nas_core.config as c; c.parse_experiment({'name': 'x', 'space': {'cells': "
            "{'normal': {}, 'down': {}, 'up': {'nodes': 2}}}}); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
