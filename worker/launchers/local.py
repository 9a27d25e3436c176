"""Local launcher: each run is a detached process group on this machine; cancel signals the whole group."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from nas_core.rundir import ExitRecord, LocalRecord, RunDir
from worker.launchers._base import JobState, Launcher, RunSpec, job_env, parallel_argv, search_argv

_RUNNER = "worker.launchers._runner"
# Signals that mean "stopped from outside" (a reboot, the OOM killer, an operator): the run is requeued
# from its checkpoint rather than failed.
_KILLED = {signal.SIGKILL, signal.SIGTERM, signal.SIGINT, signal.SIGHUP}


class LocalLauncher(Launcher):
    kind = "local"

    def __init__(self, search_command: list[str], cancel_grace_s: float = 10.0):
        self.search_command = list(search_command)
        self.cancel_grace_s = cancel_grace_s

    def submit(self, spec: RunSpec) -> str:
        argv = parallel_argv(spec, search_argv(self.search_command, spec.resume))
        run_dir, rd = spec.run_dir, RunDir(spec.run_dir)
        rd.exit_record.unlink(missing_ok=True)
        cmd = [sys.executable, "-m", _RUNNER, str(run_dir), "--", *argv]
        env = {**job_env(dict(os.environ)), **spec.extra_env, "NASFORGE_RUN_ID": str(spec.run_id)}
        # The worker's repo root must be importable for the runner, whatever the run directory is.
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [_repo_root(), env.get("PYTHONPATH", "")]))
        with open(rd.stdout, "ab") as out, open(rd.stderr, "ab") as err:
            proc = subprocess.Popen(cmd, cwd=run_dir, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env,
                                    start_new_session=True, close_fds=True)
        LocalRecord(pid=proc.pid, argv=argv, resume=spec.resume).write(rd.local_record)
        return str(proc.pid)

    def find(self, spec: RunSpec) -> str | None:
        record = LocalRecord.read(RunDir(spec.run_dir).local_record)
        return str(record.pid) if record is not None and _is_our_runner(record.pid, spec) else None

    def state(self, handle: str, spec: RunSpec, known: dict[str, str] | None = None) -> JobState:
        pid = int(handle)
        _reap(pid)
        if _is_our_runner(pid, spec):
            return JobState("RUNNING")
        # Checked after the liveness test: the runner writes the record and only then exits.
        record = ExitRecord.read(RunDir(spec.run_dir).exit_record)
        if record is None or record.pid != pid:
            if _group_alive(pid):
                return JobState("RUNNING", reason="leader gone, group still running")
            return JobState("LOST", reason=f"process group {pid} vanished without an exit record")
        rc = record.returncode
        if rc == 0:
            return JobState("COMPLETED", exit_code=0)
        sig = record.signal
        if sig and sig in _KILLED:
            return JobState("PREEMPTED", reason=f"killed by {signal.Signals(sig).name}", exit_code=rc)
        if record.interrupted_by in _KILLED:
            name = signal.Signals(record.interrupted_by).name
            return JobState("PREEMPTED", reason=f"stopped by {name} (exit code {rc})", exit_code=rc)
        return JobState("FAILED", reason=f"exit code {rc}" if rc > 0 else f"signal {sig}", exit_code=rc)

    def cancel(self, handle: str, spec: RunSpec) -> None:
        pid = int(handle)
        # Signal only a group we started: the leader is our runner, or it is gone and its group lingers.
        if not (_is_our_runner(pid, spec) or (not _exists(pid) and _group_alive(pid))):
            return
        _killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + self.cancel_grace_s
        while time.monotonic() < deadline and _group_alive(pid):
            _reap(pid)
            time.sleep(0.1)
        _killpg(pid, signal.SIGKILL)
        _reap(pid)


def _repo_root() -> str:
    return str(Path(__file__).resolve().parents[2])


def _reap(pid: int) -> None:
    # The worker process that launched the run is its parent until it restarts: collect the zombie.
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _proc_stat(pid: int) -> list[str] | None:
    try:
        raw = open(f"/proc/{pid}/stat").read()
    except OSError:
        return None
    # The command name may hold spaces and parentheses; the fields after the last ')' are fixed.
    return raw[raw.rfind(")") + 2:].split()


def _is_our_runner(pid: int, spec: RunSpec) -> bool:
    stat = _proc_stat(pid)
    if stat is None or stat[0] in ("Z", "X"):
        return False
    try:
        cmdline = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
    except OSError:
        return False
    return _RUNNER.encode() in cmdline and str(spec.run_dir).encode() in cmdline


def _group_alive(pgid: int) -> bool:
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _proc_stat(int(entry))
            # stat[2] is the process group; zombies wait only for their parent to collect them.
            if stat and stat[2] == str(pgid) and stat[0] not in ("Z", "X"):
                return True
    return False


def _killpg(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass
