"""`nasforge describe` as a user runs it: a real process on the published DARTS_V2 text and on our JSON form."""
import json
import random
import subprocess
import sys
from pathlib import Path

from nas_core.space import SpaceConfig, build_network, count_parameters, sample_genotype

ROOT = Path(__file__).resolve().parents[2]
NASFORGE = [sys.executable, "-m", "nas_core.cli"] if (ROOT / "nas_core" / "cli" / "__main__.py").exists() else \
    [str(Path(sys.executable).with_name("nasforge"))]


def _describe(*args):
    return subprocess.run([*NASFORGE, "describe", *map(str, args)], capture_output=True, text=True, cwd=ROOT, timeout=120)


def test_describe_darts_v2():
    out = _describe(ROOT / "examples" / "genotypes" / "DARTS_V2.txt", "--macro", "darts-classifier", "--channels", 36,
                    "--layers", 20, "--classes", 10, "--auxiliary")
    assert out.returncode == 0, out.stderr
    assert "parameters: 3,349,342 (without auxiliary head)" in out.stdout
    with_aux = [line for line in out.stdout.splitlines() if "with auxiliary head" in line]
    assert with_aux and int(with_aux[0].split()[1].replace(",", "")) > 3_349_342
    assert "node 5 = skip_connect(c_{k-2}) + dil_conv_3x3(2)" in out.stdout


def _describe_in_process(*args):
    # The same command through typer's runner: no second interpreter to start for every case.
    from typer.testing import CliRunner

    from nas_core.cli import app

    return CliRunner().invoke(app, ["describe", *map(str, args)])


def test_describe_json_unet(tmp_path):
    space = SpaceConfig(channels=8, depth=2)
    g = sample_genotype(space, random.Random(5))
    path = tmp_path / "g.json"
    path.write_text(json.dumps(g.to_dict()))
    out = _describe_in_process(path, "--macro", "unet", "--channels", 8, "--classes", 2, "--depth", 2)
    assert out.exit_code == 0, out.output
    assert f"parameters: {count_parameters(build_network(g, space)):,}" in out.stdout
    assert g.hash() in out.stdout and "up cell:" in out.stdout


def test_describe_rejects_code(tmp_path):
    path = tmp_path / "evil.txt"
    path.write_text("Genotype(normal=__import__('os').system('touch pwned'), normal_concat=[2], reduce=[], reduce_concat=[2])")
    out = _describe_in_process(path)
    assert out.exit_code == 2 and "only lists" in out.output and not (ROOT / "pwned").exists()
