"""One writer per run directory: a second `nasforge search` on a live run directory exits 2 with a clear error and
writes nothing, whatever method or resume flag it is given; the lock dies with its owner (kill -9)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nas_core.rundir import RunDir, RunDirBusy, RunLock, write_config
from nas_core.search.event_schema import validate_events
from tests.search.conftest import read_log, tiny_experiment

NASFORGE = str(Path(sys.executable).with_name("nasforge"))


def _search(config: Path, run_dir: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([NASFORGE, "search", str(config), "--run-dir", str(run_dir), "--threads", "1", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _snapshot(root: Path) -> dict[str, tuple[int, float]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime) for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("method,args", [("darts", ("--resume",)), ("random", ()), ("darts", ("--stage", "retrain"))])
def test_a_second_writer_exits_2_and_leaves_the_directory_as_it_was(tmp_path, method, args):
    config = tmp_path / "exp.yaml"
    write_config(config, tiny_experiment(method=method, trials=2))
    rd = RunDir(tmp_path / "run")
    with RunLock(rd.lock):  # the first writer: this test process
        before = _snapshot(rd.root)
        proc = _search(config, rd.root, *args)
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 2, err
        assert "another search is writing this run directory" in err and f"pid {os.getpid()}" in err
        assert _snapshot(rd.root) == before
        assert not rd.events.exists()


def test_a_live_search_keeps_its_log_to_itself_and_its_lock_dies_with_it(tmp_path):
    config = tmp_path / "exp.yaml"
    write_config(config, tiny_experiment(method="darts", epochs=30))
    rd = RunDir(tmp_path / "run")
    first = _search(config, rd.root)
    try:
        deadline = time.monotonic() + 60
        while not (rd.events.exists() and rd.events.stat().st_size > 0) and time.monotonic() < deadline:
            time.sleep(0.1)
        second = _search(config, rd.root, "--resume")
        _, err = second.communicate(timeout=120)
        assert second.returncode == 2 and "another search is writing" in err
        with pytest.raises(RunDirBusy):
            RunLock(rd.lock).acquire()
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
        RunLock(rd.lock).acquire().release()  # the kernel dropped the dead owner's lock
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    validate_events(read_log(rd.events))  # one writer: seqs 1, 2, 3... with no repeat


@pytest.mark.mpi
def test_a_bad_config_under_mpirun_is_reported_once_by_rank_0(tmp_path):
    from nas_core.mpi import mpirun_command

    config = tmp_path / "exp.yaml"
    config.write_text("name: bad\nsearch: {method: random, trials: 0}\n")
    rd = RunDir(tmp_path / "run")
    rd.root.mkdir()
    cmd = mpirun_command(3, [NASFORGE, "search", str(config), "--run-dir", str(rd.root), "--threads", "1"])
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    events = read_log(rd.events)
    assert [(e["kind"], e["payload"]["state"]) for e in events] == [("status", "failed")]
    assert "search.trials" in events[0]["payload"]["error"]
