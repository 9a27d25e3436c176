"""`make run`'s process manager: supervisord (supervisor, from PyPI) keeps redis, the Celery worker, beat and the
API up, restarting a dead one at once and one that dies while starting with a growing back-off (1 s, 2 s, ...,
then FATAL after `startretries`). Its log is on the console and in logs/supervisord.log; the restart counts are
in services.json (written by deploy/_service_events.py), which /api/health and the UI's header show.

Why supervisor rather than a loop of our own: restart, back-off, process groups and log files are what it has
done for twenty years; what is ours is only the list of programs. Runs are not among them: the local launcher
starts each run in a session of its own, so no program's death or restart reaches a run.
"""
from __future__ import annotations

import os
import pwd
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from backend.core.config import SERVICES_FILE
from deploy.local import ROOT


@dataclass
class Program:
    name: str
    command: list[str]
    startsecs: int = 3  # alive this long counts as started; an earlier exit is a failed start (back-off)
    user: str | None = None
    stopsignal: str = "TERM"
    autostart: bool = True


@dataclass
class Supervisor:
    """supervisord in the foreground as a child of `make run`, with one [program] per service."""

    data_dir: Path
    env: dict[str, str]
    programs: list[Program] = field(default_factory=list)
    startretries: int = 8
    proc: subprocess.Popen | None = None

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir)
        self.logs = self.data_dir / "logs"
        self.logs.mkdir(mode=0o700, parents=True, exist_ok=True)
        # The control socket's path must stay under the 108 bytes of sun_path, whatever the data directory is.
        self.sock_dir = Path(tempfile.mkdtemp(prefix="nasforge-sup-"))
        self.conf = self.data_dir / "supervisord.conf"

    @property
    def services_file(self) -> Path:
        return self.data_dir / SERVICES_FILE

    def add(self, name: str, command: list[str], startsecs: int = 3, **options) -> None:
        self.programs.append(Program(name, command, startsecs, **options))

    def render(self) -> str:
        sections = [
            "[unix_http_server]", f"file={self.sock_dir / 'supervisor.sock'}", "chmod=0700", "",
            "[supervisord]", "nodaemon=true", f"logfile={self.logs / 'supervisord.log'}", "logfile_maxbytes=10MB",
            f"pidfile={self.sock_dir / 'supervisord.pid'}", f"childlogdir={self.logs}", "umask=077",
            # As whoever started it (root in a container): said, so supervisord does not warn that it did not drop.
            f"user={_escape(pwd.getpwuid(os.geteuid()).pw_name)}", "",
            "[rpcinterface:supervisor]", "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface", "",
            "[supervisorctl]", f"serverurl=unix://{self.sock_dir / 'supervisor.sock'}", "",
        ]
        for priority, prog in enumerate(self.programs, start=1):
            sections += [
                f"[program:{prog.name}]", f"command={_quoted(prog.command)}", f"directory={_escape(str(ROOT))}",
                f"priority={priority * 10}", f"autostart={str(prog.autostart).lower()}", "autorestart=true",
                f"startsecs={prog.startsecs}", f"startretries={self.startretries}",
                # Children too (Celery's pool, uvicorn's workers); a run is in its own session and never here.
                "stopasgroup=true", "killasgroup=true", "stopwaitsecs=15", f"stopsignal={prog.stopsignal}",
                *([f"user={prog.user}"] if prog.user else []),
                f"stdout_logfile={_escape(str(self.logs / f'{prog.name}.log'))}", "stdout_logfile_maxbytes=50MB",
                "stdout_logfile_backups=2", "redirect_stderr=true", "",
            ]
        listener = [sys.executable, "-m", "deploy._service_events", str(self.services_file)]
        sections += [
            "[eventlistener:service-events]", f"command={_quoted(listener)}", f"directory={_escape(str(ROOT))}",
            "events=PROCESS_STATE", "autorestart=true", "buffer_size=64",
            f"stderr_logfile={_escape(str(self.logs / 'service-events.log'))}", "",
        ]
        return "\n".join(sections)

    def start(self) -> None:
        self.services_file.unlink(missing_ok=True)  # a previous platform's counts are not this one's
        fd = os.open(self.conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(self.render())
        supervisord = Path(sys.executable).with_name("supervisord")
        argv = [str(supervisord)] if supervisord.exists() else [sys.executable, "-m", "supervisor.supervisord"]
        # Its own session: Ctrl-C reaches `make run`, which then stops supervisord (and so every program) in order.
        self.proc = subprocess.Popen([*argv, "-c", str(self.conf)], cwd=ROOT, env={**os.environ, **self.env},
                                     stdin=subprocess.DEVNULL, start_new_session=True)

    def rpc(self):
        """supervisord's XML-RPC interface over its unix socket (what `supervisorctl` talks to)."""
        import xmlrpc.client

        from supervisor.xmlrpc import SupervisorTransport

        transport = SupervisorTransport(None, None, f"unix://{self.sock_dir / 'supervisor.sock'}")
        return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport).supervisor

    def restart(self, name: str) -> None:
        """Stop a program (its stopsignal, then KILL after stopwaitsecs) and start it; returns once it is RUNNING."""
        rpc = self.rpc()
        if rpc.getProcessInfo(name)["statename"] in ("RUNNING", "STARTING", "BACKOFF"):
            rpc.stopProcess(name)
        rpc.startProcess(name)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, grace: float = 60.0) -> None:
        """SIGTERM to supervisord stops every program (TERM to its group, KILL after stopwaitsecs), in reverse order."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.services_file.unlink(missing_ok=True)
        shutil.rmtree(self.sock_dir, ignore_errors=True)


def _escape(text: str) -> str:
    # supervisor expands %(name)s in its values: a literal % is written %%.
    return text.replace("%", "%%")


def _quoted(argv: list[str]) -> str:
    return _escape(shlex.join(argv))
