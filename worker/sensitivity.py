"""The bodies of the sensitivity tasks: `nasforge sensitivity --run-dir .` started in a finished run's directory
(`start`), then, once it has ended, its `sensitivity` event stored through the watcher's tail (`follow`).

The command runs detached, as a local run's search does: measuring a network takes minutes, and a worker slot
held that long would stop every other run's events and launches. It runs as the search ran (argument list, no
shell, the worker's environment less its credentials) and reads the checkpoint confined to the platform's roots.
The run has ended, so the sweeps no longer tail its log: `follow` reads the line the command appended, from the
run's log offset, so it is stored exactly once whoever reads it.
"""
from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import time
from pathlib import Path

from backend import crud
from backend.core.config import get_settings
from backend.core.db import session_scope
from backend.sensitivity import SensitivityState, check_applies, read_state, run_dir_of, write_state
from nas_core.rundir import RunDir
from worker.launchers._base import job_env
from worker.locks import run_lock
from worker.settings import get_worker_settings
from worker.watcher import tail

log = logging.getLogger(__name__)
POLL_S = 2.0
# A tiny network measures in seconds, a large one on a CPU in tens of minutes; past this it is given up.
TIMEOUT_S = 4 * 3600


def start(run_id: int) -> tuple[str, float]:
    """Start the command for one run; (the state, seconds until `follow` should look)."""
    settings = get_settings()
    try:
        with session_scope() as session:
            run = crud.get_run(session, run_id)
            check_applies(run, settings)  # again: the run may have been retried since the request
            rd = RunDir(run_dir_of(run, settings))
    except Exception as exc:
        write_state(settings, run_id, SensitivityState.failed, str(exc))
        return SensitivityState.failed, 0.0
    argv = [*get_worker_settings().search_argv(), "sensitivity", "--run-dir", "."]
    env = job_env(dict(os.environ))
    # The checkpoint is read as a partial search's init_from is: inside the data roots or the runs folder.
    env["NASFORGE_DATA_ROOTS"] = os.pathsep.join(str(p) for p in settings.data_roots)
    env["NASFORGE_RUNS_DIR"] = str(settings.runs_dir)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).resolve().parent.parent),
                                                      env.get("PYTHONPATH", "")]))
    started = time.time()
    try:
        with open(rd.sensitivity_log, "wb") as out:
            proc = subprocess.Popen(argv, cwd=rd.root, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                    env=env, start_new_session=True, close_fds=True)
    except OSError as exc:
        write_state(settings, run_id, SensitivityState.failed, f"could not start nasforge sensitivity: {exc}")
        return SensitivityState.failed, 0.0
    write_state(settings, run_id, SensitivityState.running, extra={"pid": proc.pid, "started": started})
    return SensitivityState.running, POLL_S


def follow(run_id: int) -> tuple[str, float]:
    """While the command runs: (running, seconds until the next look). Once it has ended: its event stored, and
    done (it wrote RUN/sensitivity.json) or failed (its error lines as the reason)."""
    settings = get_settings()
    state = read_state(settings, run_id) or {}
    if state.get("state") != SensitivityState.running or "pid" not in state:
        return str(state.get("state", "")), 0.0
    pid, started = int(state["pid"]), float(state["started"])
    with session_scope() as session:
        rd = RunDir(run_dir_of(crud.get_run(session, run_id), settings))
    if _alive(pid, rd.root):
        if time.time() - started < TIMEOUT_S:
            return SensitivityState.running, POLL_S
        with contextlib.suppress(OSError):
            os.killpg(pid, 9)
        write_state(settings, run_id, SensitivityState.failed, f"nasforge sensitivity ran past {TIMEOUT_S} s")
        return SensitivityState.failed, 0.0
    with run_lock(run_id), session_scope() as session:
        tail(session, crud.get_run(session, run_id), rd.root)
    # The exit code went with the process (the worker that started it may not be this one): the command writes
    # the JSON only when it has measured every block, so a file from after the start is its success.
    done = rd.sensitivity.is_file() and rd.sensitivity.stat().st_mtime >= started
    reason = "" if done else (_error_lines(rd.sensitivity_log) or "nasforge sensitivity ended without a result")
    write_state(settings, run_id, SensitivityState.failed if reason else SensitivityState.done, reason)
    if reason:
        log.warning("run %s: sensitivity failed: %s", run_id, reason)
    return (SensitivityState.failed if reason else SensitivityState.done), 0.0


def _alive(pid: int, run_dir: Path) -> bool:
    """The command with this pid still runs in this run directory (not a zombie, not a reused pid)."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)  # reap it if this process started it
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z" and cwd == run_dir.resolve()


def _error_lines(path: Path, lines: int = 8) -> str:
    """From the command's first `error:` line on (its own word on what is wrong), else the end of its output."""
    try:
        kept = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    first = next((i for i, ln in enumerate(kept) if ln.startswith("error:")), None)
    return "\n".join(kept[first:first + lines] if first is not None else kept[-lines:])[-2000:]
