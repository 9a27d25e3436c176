"""Data-parallel `nasforge search`: 2 ranks (real torchrun / horovodrun processes) on half batches give the
alpha and weights of 1 process on the full batch over several epochs, for DARTS (both orders; Adam and SGD on
alpha), PC-DARTS and GAEA. A rank that sends twice its gradient (tests/distributed/_mutant.py) fails the same
comparison: it can fail."""
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
from nas_core.config import parse_experiment
from nas_core.search.loop import BilevelSearch
from nas_core.search.reporting import EventSink

from _experiments import REFERENCES, experiment

NASFORGE = str(Path(sys.executable).with_name("nasforge"))
MUTANT = str(Path(__file__).with_name("_mutant.py"))
ENV = {**os.environ, "GLOO_SOCKET_IFNAME": "lo", "OMP_NUM_THREADS": "1"}
# Three epochs (6 steps each of weights and alpha, a cosine learning rate that changes per epoch): drift between
# the two runs would add up where one or two steps could hide it.
EPOCHS = 3
RTOL, ALPHA_ATOL, WEIGHT_ATOL = 1e-4, 1e-6, 1e-5
# SGD on alpha: its step is proportional to the gradient, so a sum over ranks instead of a mean, which Adam's
# normalised step hides, shows in alpha. alpha's gradient here is ~1e-3, hence lr 1. Measured once (a mutant that
# doubled only the architecture gradient, on ddp): after the 6 steps Adam's alpha was 7e-7 off (within atol), SGD's 0.1.
SGD = {"method": "darts", "order": 1, "arch_optimizer": "sgd", "arch_lr": 1.0}
CASES = [
    ("ddp", {"method": "darts", "order": 2}),
    ("ddp", {"method": "gaea"}),
    ("horovod", {"method": "pcdarts"}),
    ("horovod", SGD),
]


def start(run_dir: Path, cfg: dict, ranks: int, program: tuple[str, ...] = (NASFORGE,)) -> subprocess.Popen:
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg))
    argv = [*program, "search", "config.yaml", "--run-dir", ".", "--stage", "search", "--deterministic",
            "--threads", "1"]
    engine = cfg["distributed"]["engine"]
    if ranks > 1 and engine == "ddp":
        argv = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(ranks),
                "--master_port", str(free_port()), "--no-python", *argv]
    elif ranks > 1:
        argv = [str(Path(sys.executable).with_name("horovodrun")), "-np", str(ranks), "--gloo",
                "--network-interface", "lo", "-p", str(free_port()), *argv]
    with open(run_dir / "output.log", "wb") as log:
        return subprocess.Popen(argv, cwd=run_dir, env=ENV, stdout=log, stderr=subprocess.STDOUT)


def finish(*runs: tuple[subprocess.Popen, Path]) -> None:
    """Waits for each run and checks it succeeded; whatever happens, none is left running."""
    try:
        for proc, run_dir in runs:
            assert proc.wait(400) == 0, (run_dir / "output.log").read_text()[-6000:]
    finally:
        for proc, _ in runs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def one_process(cfg: dict) -> dict:
    return {**cfg, "distributed": {**cfg["distributed"], "engine": "none"}}


def checkpoint(run_dir: Path) -> dict:
    return torch.load(run_dir / "checkpoints" / "last.pt", weights_only=False)


def events(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]


def assert_same_run(one: Path, two: Path) -> None:
    """The two runs computed the same search: steps, alpha, weights and BatchNorm buffers, each epoch's loss."""
    a, b = checkpoint(one), checkpoint(two)
    assert a["step"] == b["step"] > 0
    for i, (x, y) in enumerate(zip(a["arch"], b["arch"], strict=True)):
        torch.testing.assert_close(y, x, rtol=RTOL, atol=ALPHA_ATOL, msg=lambda m, i=i: f"alpha {i}: {m}")
    for key, value in a["model"].items():
        torch.testing.assert_close(b["model"][key], value, rtol=RTOL, atol=WEIGHT_ATOL, msg=key)
    loss = lambda run: [e["payload"]["train_loss"] for e in events(run) if e["kind"] == "metric"]
    assert len(loss(one)) == EPOCHS
    assert loss(two) == pytest.approx(loss(one), rel=RTOL)


def initial_alpha(cfg: dict, where: Path) -> list[torch.Tensor]:
    """alpha as the search initialises it: the search itself built from the same config and seed, never run."""
    where.mkdir()
    with EventSink(where / "events.jsonl", heartbeat_s=0) as sink:
        search = BilevelSearch(parse_experiment(cfg), sink, where / "last.pt", device="cpu")
        return [p.detach().clone() for p in search.model.arch_parameters()]


def assert_alpha_moved(cfg: dict, run: Path, scratch: Path) -> None:
    """Equality within the tolerance means something only if alpha travelled far beyond it from where it started
    (the tolerance at the largest alpha: GAEA's sit near 1/4, where rtol outweighs atol)."""
    init, final = initial_alpha(one_process(cfg), scratch), checkpoint(run)["arch"]
    moved = max(float((x - x0).abs().max()) for x, x0 in zip(final, init, strict=True))
    tolerance = ALPHA_ATOL + RTOL * max(float(x.abs().max()) for x in final)
    assert moved > 100 * tolerance, f"alpha moved {moved:.1e} from its initial value, tolerance {tolerance:.1e}"


@pytest.fixture
def references() -> dict[str, Path]:
    """The session's one-process runs by search settings (_experiments.REFERENCES), so the mutant test and the
    two-node test (tests/distributed/test_multinode_search.py) reuse the equality test's, or it theirs."""
    return REFERENCES


def _require(engine: str) -> None:
    if engine == "horovod":
        pytest.importorskip("horovod.torch", reason="Horovod is not built: make horovod (scripts/build-horovod.sh)")


@pytest.mark.parametrize("engine,search", CASES, ids=[
    f"{e}-{s['method']}{s.get('order', '')}{'-' + s['arch_optimizer'] if 'arch_optimizer' in s else ''}"
    for e, s in CASES])
def test_two_ranks_equal_one_process(engine, search, tmp_path, references):
    _require(engine)
    cfg = experiment(engine, epochs=EPOCHS, **search)
    key = json.dumps(search, sort_keys=True)
    one = references.get(key)
    runs = [(start(tmp_path / "two", cfg, 2), tmp_path / "two")]
    if one is None:
        # Both at once: the one-process run alone would leave the second core idle. Each process is one thread of a
        # deterministic search, so sharing the cores changes their wall time, not a value they compute.
        one = tmp_path / "one"
        runs.append((start(one, one_process(cfg), 1), one))
    finish(*runs)
    references[key] = one
    assert_same_run(one, tmp_path / "two")
    assert_alpha_moved(cfg, one, tmp_path / "init")
    # Only rank 0 wrote events, once each.
    assert [e["seq"] for e in events(tmp_path / "two")] == list(range(1, len(events(tmp_path / "two")) + 1))


def test_a_rank_sending_twice_its_gradient_fails_the_comparison(tmp_path, references):
    """The mutation check: rank 1 scales its gradients by 2 before every all-reduce (so the ranks average
    g0 + 2 g1 instead of g0 + g1), on the SGD case; `assert_same_run` must then fail, on alpha already."""
    cfg = experiment("ddp", epochs=EPOCHS, **SGD)
    runs = [(start(tmp_path / "mutant", cfg, 2, program=(sys.executable, MUTANT, "1", "2.0")), tmp_path / "mutant")]
    one = references.get(json.dumps(SGD, sort_keys=True))
    if one is None:  # run alone (or Horovod not built): compute the reference here, at the same time
        one = tmp_path / "one"
        runs.append((start(one, one_process(cfg), 1), one))
    finish(*runs)
    with pytest.raises(AssertionError, match="alpha"):
        assert_same_run(one, tmp_path / "mutant")
