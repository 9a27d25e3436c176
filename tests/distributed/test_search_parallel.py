"""Data-parallel `nasforge search`: 2 ranks (real torchrun / horovodrun processes) on half batches give the
alpha and weights of 1 process on the full batch, for DARTS (both orders), PC-DARTS and GAEA."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from deploy.local import free_port

from _experiments import experiment

NASFORGE = str(Path(sys.executable).with_name("nasforge"))
ENV = {**os.environ, "GLOO_SOCKET_IFNAME": "lo", "OMP_NUM_THREADS": "1"}


def start(run_dir: Path, cfg: dict, ranks: int) -> subprocess.Popen:
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg))
    argv = [NASFORGE, "search", "config.yaml", "--run-dir", ".", "--stage", "search", "--deterministic", "--threads", "1"]
    engine = cfg["distributed"]["engine"]
    if ranks > 1 and engine == "ddp":
        argv = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(ranks),
                "--master_port", str(free_port()), "--no-python", *argv]
    elif ranks > 1:
        argv = [str(Path(sys.executable).with_name("horovodrun")), "-np", str(ranks), "--gloo",
                "--network-interface", "lo", "-p", str(free_port()), *argv]
    with open(run_dir / "output.log", "wb") as log:
        return subprocess.Popen(argv, cwd=run_dir, env=ENV, stdout=log, stderr=subprocess.STDOUT)


def finish(proc: subprocess.Popen, run_dir: Path) -> None:
    try:
        returncode = proc.wait(400)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert returncode == 0, (run_dir / "output.log").read_text()[-6000:]


CASES = [
    ("ddp", {"method": "darts", "order": 2}),
    ("ddp", {"method": "gaea"}),
    ("horovod", {"method": "pcdarts"}),
    ("horovod", {"method": "darts", "order": 1}),
]


@pytest.mark.parametrize("engine,search", CASES, ids=[f"{e}-{s['method']}{s.get('order', '')}" for e, s in CASES])
def test_two_ranks_equal_one_process(engine, search, tmp_path):
    if engine == "horovod":
        pytest.importorskip("horovod.torch", reason="Horovod is not built: make horovod (scripts/build-horovod.sh)")
    one = experiment(engine, **search)
    # Both at once: the one-process run alone would leave the second core idle. Each process is one thread of a
    # deterministic search, so sharing the cores changes their wall time, not a value they compute.
    alone = start(tmp_path / "one", {**one, "distributed": {**one["distributed"], "engine": "none"}}, 1)
    try:
        finish(start(tmp_path / "two", one, 2), tmp_path / "two")
    except BaseException:
        alone.kill()
        alone.wait()
        raise
    finish(alone, tmp_path / "one")
    a = torch.load(tmp_path / "one" / "checkpoints" / "last.pt", weights_only=False)
    b = torch.load(tmp_path / "two" / "checkpoints" / "last.pt", weights_only=False)
    assert a["step"] == b["step"] > 0
    for x, y in zip(a["arch"], b["arch"]):
        torch.testing.assert_close(y, x, rtol=1e-4, atol=1e-6)
    moved = max(float((x - x.mean(-1, keepdim=True)).abs().max()) for x in a["arch"])
    assert moved > 1e-6, "alpha never moved: the comparison would be vacuous"
    for key, value in a["model"].items():
        torch.testing.assert_close(b["model"][key], value, rtol=1e-4, atol=1e-5, msg=key)
    # Only rank 0 wrote events, once each, with the averaged loss.
    events = [json.loads(line) for line in (tmp_path / "two" / "events.jsonl").read_text().splitlines()]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    loss = lambda evs: next(e["payload"]["train_loss"] for e in evs if e["kind"] == "metric")
    events_one = [json.loads(line) for line in (tmp_path / "one" / "events.jsonl").read_text().splitlines()]
    assert loss(events) == pytest.approx(loss(events_one), rel=1e-4)
