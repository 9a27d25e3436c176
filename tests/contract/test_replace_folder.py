"""nas_core.rundir.replace_folder: a finished folder takes the place of the old one whole, and nothing is left
beside it."""
import pytest

from nas_core.rundir import replace_folder


def test_a_folder_replaces_the_old_one_whole(tmp_path):
    final = tmp_path / "onnx"
    for content in ("first", "second"):
        tmp = tmp_path / f".onnx-{content}"
        tmp.mkdir()
        (tmp / "model.onnx").write_text(content)
        replace_folder(tmp, final)
        assert (final / "model.onnx").read_text() == content and not tmp.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["onnx"]  # the old one moved aside, then removed
    gone = tmp_path / ".missing"
    with pytest.raises(OSError):
        replace_folder(gone, tmp_path / "other")
    assert (final / "model.onnx").read_text() == "second"
