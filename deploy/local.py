"""Starts and stops the platform's services on this machine as child processes: redis-server, PostgreSQL,
a Celery worker, the API. `make run` and the test fixtures both use it; whatever it starts, it stops."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG_BIN = Path("/usr/lib/postgresql/15/bin")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen | None = None, timeout: float = 30.0, what: str = "service") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode} before listening on port {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"{what} did not listen on 127.0.0.1:{port} within {timeout:.0f} s")


# The services' command lines, shared by Stack (tests, one-off stacks) and the supervisor of `make run`.

def redis_command(workdir: Path, port: int) -> list[str]:
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not Path(binary).exists():
        raise RuntimeError("redis-server not found: run scripts/install-system.sh (Debian package redis-server)")
    return [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", str(workdir)]


def worker_command(workdir: Path, beat: bool = True, concurrency: int = 1) -> list[str]:
    cmd = [sys.executable, "-m", "celery", "-A", "worker.celery_app", "worker", "--loglevel", "INFO",
           "--concurrency", str(concurrency), "--hostname", f"nasforge-{os.getpid()}@%h"]
    if beat:
        cmd += ["--beat", "--schedule", str(Path(workdir) / "celerybeat-schedule")]
    return cmd


def beat_command(workdir: Path) -> list[str]:
    """Beat on its own, so that the reconcile sweeps go on being queued while a dead worker is restarted."""
    return [sys.executable, "-m", "celery", "-A", "worker.celery_app", "beat", "--loglevel", "INFO",
            "--schedule", str(Path(workdir) / "celerybeat-schedule")]


def api_command(port: int, host: str = "127.0.0.1") -> list[str]:
    # An SSE stream stays open for hours: without a bound, a stop would wait for every browser to leave. Clients
    # reconnect with Last-Event-ID, so nothing is lost by cutting them after a few seconds.
    return [sys.executable, "-m", "uvicorn", "backend.main:app", "--host", host, "--port", str(port),
            "--log-level", "info", "--timeout-graceful-shutdown", "3"]


@dataclass
class PostgresCluster:
    """A throw-away PostgreSQL cluster (initdb done): its server command, the user it runs as, and its URL."""

    data: Path
    port: int
    run_as: str | None

    @classmethod
    def create(cls) -> "PostgresCluster":
        if not (PG_BIN / "initdb").exists():
            raise RuntimeError(f"PostgreSQL not found in {PG_BIN}: run scripts/install-system.sh (package postgresql)")
        data = Path(tempfile.mkdtemp(prefix="nasforge-pg-"))
        run_as = "postgres" if os.geteuid() == 0 else None  # the server refuses to run as root
        if run_as:
            shutil.chown(data, run_as, run_as)
        user_kw = {"user": run_as} if run_as else {}
        subprocess.run([str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"],
                       check=True, capture_output=True, **user_kw)
        return cls(data, free_port(), run_as)

    @property
    def command(self) -> list[str]:
        return [str(PG_BIN / "postgres"), "-D", str(self.data), "-p", str(self.port), "-k", str(self.data),
                "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"]

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def ready(self) -> bool:
        return subprocess.run([str(PG_BIN / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-q"]).returncode == 0

    def wait_ready(self, proc: subprocess.Popen | None = None, log: Path | None = None, timeout: float = 30.0) -> None:
        wait_port(self.port, proc, timeout=timeout, what="postgres")
        # The port opens before the server accepts sessions ("the database system is starting up").
        deadline = time.monotonic() + timeout
        while not self.ready():
            if time.monotonic() > deadline or (proc is not None and proc.poll() is not None):
                raise RuntimeError(f"PostgreSQL did not accept connections; see {log or 'its log'}")
            time.sleep(0.2)


@dataclass
class Service:
    name: str
    proc: subprocess.Popen
    log: Path
    stop_cmd: list[str] | None = None  # for daemons that are stopped by a command (pg_ctl)

    def stop(self, grace: float = 10.0) -> None:
        if self.stop_cmd:
            subprocess.run(self.stop_cmd, capture_output=True, timeout=60)
        if self.proc.poll() is None:
            # Each service leads its own process group: children (Celery's pool, uvicorn's reloader) go too.
            _signal_group(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        _signal_group(self.proc.pid, signal.SIGKILL)
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


@dataclass
class Stack:
    """A set of services started together and stopped in reverse order."""

    workdir: Path
    services: list[Service] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.workdir = Path(self.workdir)
        (self.workdir / "logs").mkdir(mode=0o700, parents=True, exist_ok=True)

    def _spawn(self, name: str, cmd: list[str], env: dict | None = None, cwd: Path | None = None,
               user: str | None = None) -> Service:
        log = self.workdir / "logs" / f"{name}.log"
        # Only the owner reads service logs: they name users, runs and paths (secrets are filtered, not trusted to be).
        fh = os.fdopen(os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab")
        os.chmod(log, 0o600)  # a log made by an older version kept its 0644
        kwargs = {}
        if user:
            import pwd

            pw = pwd.getpwnam(user)
            kwargs.update(user=pw.pw_uid, group=pw.pw_gid, extra_groups=[])
        proc = subprocess.Popen(
            cmd, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=cwd or ROOT,
            env={**os.environ, **(env or {})}, start_new_session=True, **kwargs,
        )
        fh.close()
        svc = Service(name, proc, log)
        self.services.append(svc)
        return svc

    def redis(self, port: int | None = None) -> str:
        port = port or free_port()
        svc = self._spawn("redis", redis_command(self.workdir, port))
        wait_port(port, svc.proc, what="redis-server")
        return f"redis://127.0.0.1:{port}/0"

    def postgres(self) -> str:
        """A throw-away PostgreSQL cluster owned by the `postgres` user (the server refuses to run as root)."""
        pg = PostgresCluster.create()
        svc = self._spawn("postgres", pg.command, user=pg.run_as)
        pg.wait_ready(svc.proc, svc.log)
        self._pg_data = pg.data
        return pg.url

    def worker(self, env: dict, beat: bool = True, concurrency: int = 1) -> Service:
        return self._spawn("worker", worker_command(self.workdir, beat=beat, concurrency=concurrency), env=env)

    def api(self, env: dict, port: int, host: str = "127.0.0.1") -> Service:
        svc = self._spawn("api", api_command(port, host), env=env)
        wait_port(port, svc.proc, timeout=60, what="the API (uvicorn backend.main:app)")
        return svc

    def stop(self) -> None:
        while self.services:
            self.services.pop().stop()
        data = getattr(self, "_pg_data", None)
        if data:
            shutil.rmtree(data, ignore_errors=True)

    def __enter__(self) -> "Stack":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
