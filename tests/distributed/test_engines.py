"""Each engine: 2 ranks on half batches with synchronised BatchNorm compute what 1 process computes on the
full batch (real torchrun / horovodrun processes on this CPU), and a rank that sends twice its gradient fails
that comparison."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from deploy.local import free_port

TOY = Path(__file__).with_name("_toy_step.py")
ENV = {**os.environ, "GLOO_SOCKET_IFNAME": "lo", "OMP_NUM_THREADS": "1"}


def _run_together(*cmds: list[str], cwd: Path) -> None:
    """Runs the commands at once (each rank is one thread: run one after another they would leave a core idle) and
    checks each one succeeded."""
    procs = [subprocess.Popen(cmd, cwd=cwd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for cmd in cmds]
    try:
        for proc in procs:
            output = proc.communicate(timeout=240)[0]
            assert proc.returncode == 0, output[-6000:]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def _launch(engine: str, out: Path) -> list[str]:
    if engine == "ddp":
        return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                "--master_port", str(free_port()), str(TOY), "ddp", str(out)]
    horovodrun = Path(sys.executable).with_name("horovodrun")
    return [str(horovodrun), "-np", "2", "--gloo", "--network-interface", "lo", "-p", str(free_port()),
            sys.executable, str(TOY), "horovod", str(out)]


def _require(engine: str) -> None:
    if engine == "horovod":
        try:
            import horovod.torch  # noqa: F401
        except ImportError:
            pytest.skip("Horovod is not built: make horovod (scripts/build-horovod.sh)")


@pytest.mark.parametrize("engine", ["ddp", "horovod"])
def test_two_ranks_equal_one_process_on_the_full_batch(engine, tmp_path):
    _require(engine)
    _run_together([sys.executable, str(TOY), "none", str(tmp_path / "one.pt")], _launch(engine, tmp_path / "two.pt"),
                  cwd=tmp_path)
    one, two = torch.load(tmp_path / "one.pt"), torch.load(tmp_path / "two.pt")
    assert (one["world"], two["world"]) == (1, 2)
    _assert_same_state(one, two)
    # The runs moved alpha from its zeros far beyond the tolerance: equality is not two untouched initialisations.
    assert one["state"]["alpha"].abs().max() > 100 * 1e-6


def _assert_same_state(one: dict, two: dict) -> None:
    assert one["state"].keys() == two["state"].keys()
    for key, value in one["state"].items():
        torch.testing.assert_close(two["state"][key], value, rtol=1e-5, atol=1e-6, msg=key)
    assert one["loss"] == pytest.approx(two["loss"], rel=1e-5)


def test_a_rank_sending_twice_its_gradient_fails_the_comparison(tmp_path):
    """The mutation check: rank 1 scales its gradients by 2 before every all-reduce; the comparison must fail."""
    _run_together([sys.executable, str(TOY), "none", str(tmp_path / "one.pt")],
                  _launch("ddp", tmp_path / "two.pt") + ["scale:1:2"], cwd=tmp_path)
    with pytest.raises(AssertionError):
        _assert_same_state(torch.load(tmp_path / "one.pt"), torch.load(tmp_path / "two.pt"))


# backstall: the rank hangs inside backward, just before SyncBatchNorm's all-reduce of the gradient statistics
# (autograd runs that collective, outside the forward's guard: it must name the rank too).
@pytest.mark.parametrize("fault", ["kill", "stall", "backstall"])
@pytest.mark.parametrize("engine", ["ddp", "horovod"])
def test_a_dead_or_stalled_rank_fails_the_run_and_is_named(engine, fault, tmp_path):
    _require(engine)
    import time

    cmd = _launch(engine, tmp_path / "two.pt") + [f"{fault}:1:2"]
    start = time.monotonic()
    # A stall is only noticed once the timeout has passed, so the test waits it out in full: 5 s is still far above
    # a toy step (milliseconds), and both ranks reach the first collective together (torch is imported before it).
    out = subprocess.run(cmd, cwd=tmp_path, env={**ENV, "TOY_TIMEOUT_S": "5"}, capture_output=True, text=True,
                         timeout=120)
    elapsed = time.monotonic() - start
    assert out.returncode != 0
    assert elapsed < 60, f"took {elapsed:.0f} s to notice"
    text = (out.stdout + out.stderr).lower()
    # Our RankFailure says "rank 1: ..."; torchrun says "rank: 1"; horovodrun names gloo processes by rank.
    import re

    assert re.search(r"rank 1\b|rank: 1\b|ranks: 1\b|process 1 exit", text), text[-3000:]
    assert not (tmp_path / "two.pt").exists()
