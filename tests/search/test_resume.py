"""Kill -9 a real `nasforge search` twice (before its first checkpoint, then after epoch 2's), resume it, and
compare with an uninterrupted run: the same alpha trajectory bit for bit, and an event log without gap or repeat."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from nas_core.search.event_schema import validate_events
from tests.search.conftest import read_log, tiny_experiment

EPOCHS = 4


def _argv(exp: Path, run_dir: Path, resume: bool = False) -> list[str]:
    script = Path(sys.executable).with_name("nasforge")
    base = [str(script)] if script.exists() else [sys.executable, "-c", "from nas_core.cli import app; app()"]
    return base + ["search", str(exp), "--run-dir", str(run_dir), "--deterministic", "--threads", "1",
                   *(["--resume"] if resume else [])]


def _env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}


def _events(run_dir: Path) -> list[dict]:
    path = run_dir / "events.jsonl"
    if not path.exists():
        return []
    lines = path.read_bytes().split(b"\n")[:-1]  # a line still being written waits
    import json

    return [json.loads(line) for line in lines]


def _kill_when(proc: subprocess.Popen, ready, timeout: float = 240.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the search ended (rc {proc.returncode}) before the kill point; make it longer")
        if ready():
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            return
        time.sleep(0.02)
    proc.kill()
    pytest.fail("the kill point never came")


def _checkpoint_epoch(run_dir: Path) -> int:
    path = run_dir / "checkpoints" / "last.pt"
    if not path.exists():
        return -1
    return torch.load(path, map_location="cpu", weights_only=True)["epoch"]


def _history(log: list[dict]) -> dict:
    """History events by (kind, stage, epoch, step), with what must match exactly between runs."""
    out: dict = {}
    for e in log:
        p = e["payload"]
        if e["kind"] == "alpha":
            value = p["cells"]
        elif e["kind"] == "metric" and p.get("stage") == "search":
            value = (p["train_loss"], p["val_loss"], p["val_iou"])
        elif e["kind"] == "genotype":
            value = p["genotype"]
        else:
            continue
        key = (e["kind"], p.get("stage"), p["epoch"], p.get("step"))
        assert key not in out, f"event {key} written twice (seq {e['seq']})"
        out[key] = value
    return out


@pytest.mark.slow
def test_kill_and_resume_gives_the_same_run(tmp_path):
    exp = tmp_path / "exp.yaml"
    spec = tiny_experiment(method="pcdarts", epochs=EPOCHS, warmup_epochs=1, events_every_steps=1)
    exp.write_text(yaml.safe_dump(spec))
    whole, cut = tmp_path / "whole", tmp_path / "cut"

    # The uninterrupted run goes alongside the interrupted one: each is one thread of a deterministic search, so
    # sharing the machine changes their wall time, not a value they write.
    err = tmp_path / "whole.err"
    with open(err, "wb") as stderr:
        done = subprocess.Popen(_argv(exp, whole), env=_env(), stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        # Kill 1: as soon as epoch 0's metric is out, most likely before its checkpoint.
        proc = subprocess.Popen(_argv(exp, cut), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _kill_when(proc, lambda: any(e["kind"] == "metric" for e in _events(cut)))
        # Kill 2: after the checkpoint of epoch 2 (of 4) is on disk.
        proc = subprocess.Popen(_argv(exp, cut, resume=True), env=_env(), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        _kill_when(proc, lambda: _checkpoint_epoch(cut) >= 2)
        assert _checkpoint_epoch(cut) < EPOCHS
        last = subprocess.run(_argv(exp, cut, resume=True), env=_env(), capture_output=True, text=True, timeout=300)
        assert last.returncode == 0, last.stderr[-3000:]
    except BaseException:
        done.kill()
        done.wait()
        raise
    assert done.wait(300) == 0, err.read_text()[-3000:]

    a, b = read_log(whole / "events.jsonl"), read_log(cut / "events.jsonl")
    assert validate_events(b) == len(b)  # seq 1, 2, 3, ... : no gap, no repeat
    ha, hb = _history(a), _history(b)
    assert sum(k[0] == "alpha" for k in ha) > EPOCHS  # step-level alphas too
    assert list(hb) == list(ha)
    assert hb == ha  # the alpha trajectory, value for value (float32 written exactly)
    assert any(e["kind"] == "log" and "resumed at epoch" in e["payload"]["message"] for e in b)
    assert a[-1]["payload"]["state"] == b[-1]["payload"]["state"] == "succeeded"

    ca = torch.load(whole / "checkpoints" / "last.pt", weights_only=True)
    cb = torch.load(cut / "checkpoints" / "last.pt", weights_only=True)
    assert ca["epoch"] == cb["epoch"] == EPOCHS and ca["step"] == cb["step"]
    assert all(torch.equal(x, y) for x, y in zip(ca["arch"], cb["arch"]))
    assert all(torch.equal(ca["model"][k], cb["model"][k]) for k in ca["model"])
    assert (whole / "genotype.json").read_text() == (cut / "genotype.json").read_text()
    assert (whole / "metrics.json").read_text() == (cut / "metrics.json").read_text()
