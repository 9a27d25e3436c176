"""nas_core/data/roots.py, the one check both the API and the worker make: resolved first, one message for all."""
from __future__ import annotations

import pytest

from nas_core.data.roots import OutsideDataRoots, confine_data_path, find_in_roots


def test_inside_is_resolved_and_outside_is_one_message(tmp_path):
    root, base = tmp_path / "data", tmp_path / "var"
    (root / "ds").mkdir(parents=True)
    (tmp_path / "data2").mkdir()  # a sibling whose name starts like the root's
    (root / "out").symlink_to(tmp_path)
    (root / "loop").symlink_to(root / "loop")
    assert confine_data_path(root / "ds", [root], base) == (root / "ds").resolve()
    assert confine_data_path(root, [root], base) == root.resolve()
    assert confine_data_path("../data/ds", [root], base) == (root / "ds").resolve()
    assert confine_data_path(root / "not-yet", [root], base) == (root / "not-yet").resolve()
    messages = set()
    for bad in ("/etc", "../../../../etc", "/etc/none", tmp_path / "data2", root / "out", root / "ds" / ".." / "..",
                "", "a\x00b", "../var", root / "loop" / "x"):
        with pytest.raises(OutsideDataRoots) as err:
            confine_data_path(bad, [root], base)
        messages.add(str(err.value))
    assert messages == {f"data.path: must lie inside an allowed data root (NASFORGE_DATA_ROOTS): {root.resolve()}"}
    with pytest.raises(OutsideDataRoots, match=r"\(none configured\)"):
        confine_data_path(root / "ds", [], base)


def test_a_relative_path_is_looked_up_in_the_roots(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    (second / "ds").mkdir(parents=True)
    first.mkdir()
    assert find_in_roots("ds", [first, second]) == (second / "ds").resolve()  # the root that holds it
    assert find_in_roots("new", [first, second]) == (first / "new").resolve()  # not made yet: the first root's
    assert find_in_roots(second / "ds", [first, second]) == (second / "ds").resolve()
    for bad in ("../b/../../etc", "/etc", "", "a\x00b"):
        with pytest.raises(OutsideDataRoots, match=r"^data\.path: must lie inside"):
            find_in_roots(bad, [first, second])
