"""A small client of a nasforge server's HTTP API (docs/api.md): submit an experiment, list runs, follow one's
events live, fetch its artifacts. `nasforge remote` is its command line; it needs httpx (`pip install nasforge[remote]`).

The token comes from NASFORGE_TOKEN or a file only its owner can read, never from the command line: argv is
visible to every user of the machine (ps, /proc) and lands in shell history.
"""
from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any, Callable, Iterator

from nas_core.rundir import write_atomic

TOKEN_ENV, SERVER_ENV = "NASFORGE_TOKEN", "NASFORGE_SERVER"
TOKEN_FILE = Path("~/.config/nasforge/token")


class ClientError(RuntimeError):
    """What went wrong talking to the server, in words the user can act on."""


def read_token(token_file: str | os.PathLike | None = None, env: dict[str, str] | None = None) -> str:
    """NASFORGE_TOKEN, else the token file (default ~/.config/nasforge/token), which must be mode 0600 or stricter."""
    env = os.environ if env is None else env
    if env.get(TOKEN_ENV, "").strip() and token_file is None:
        return env[TOKEN_ENV].strip()
    path = Path(token_file or TOKEN_FILE).expanduser().resolve()
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise ClientError(f"no token: set {TOKEN_ENV}, or write it to {path} (chmod 600 {path})") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ClientError(f"{path}: mode {stat.S_IMODE(mode):04o} lets other users read the token; "
                          f"refusing it: run `chmod 600 {path}` (and revoke the token if others could read it)")
    token = path.read_text().strip()
    if not token:
        raise ClientError(f"{path}: the token file is empty")
    return token


def server_url(server: str | None = None, env: dict[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    url = (server or env.get(SERVER_ENV, "")).strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise ClientError(f"--server: give the server's URL (e.g. http://127.0.0.1:8000) or set {SERVER_ENV}; "
                          f"got {url!r}")
    return url


def parse_sse(lines: Iterator[str]) -> Iterator[tuple[str, str | None, str]]:
    """(event, id, data) per Server-Sent Event of a stream of lines (the `message` event when none is named)."""
    event, id_, data = "message", None, []
    for line in lines:
        if not line:
            if data:
                yield event, id_, "\n".join(data)
            event, data = "message", []
        elif line.startswith(":"):
            continue  # a keepalive comment
        else:
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "data":
                data.append(value)
            elif field == "event":
                event = value
            elif field == "id":
                id_ = value


class Client:
    """The API of one server as one user (its token)."""

    def __init__(self, server: str, token: str, timeout: float = 30.0):
        import httpx

        self.http = httpx.Client(base_url=f"{server}/api", headers={"Authorization": f"Bearer {token}"},
                                 timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _call(self, method: str, path: str, **kw) -> Any:
        import httpx

        try:
            r = self.http.request(method, path, **kw)
        except httpx.TransportError as exc:
            raise ClientError(f"{self.http.base_url}: cannot reach the server ({type(exc).__name__}: {exc})") from None
        if r.status_code >= 400:
            try:
                detail = r.json().get("detail", r.text)
            except ValueError:
                detail = r.text
            raise ClientError(f"{method} {path}: HTTP {r.status_code}: {detail}")
        return r.json() if r.content else None

    def submit(self, experiment: str | os.PathLike, baselines: bool = True) -> dict:
        """Create the experiment of a YAML file and launch a run of it; the launch result (run and baselines).

        Relative paths in the file are sent as written: the server takes them inside its own data roots."""
        from nas_core.config import parse_experiment, read_experiment_file

        data = read_experiment_file(experiment, resolve=False)
        parse_experiment(data, where=str(experiment))  # the server's schema, checked here first: errors name the file
        exp = self._call("POST", "/experiments", json=data)
        return self._call("POST", f"/experiments/{exp['id']}/runs", json={"baselines": baselines})

    def runs(self, limit: int = 20, experiment_id: int | None = None) -> list[dict]:
        params = {"limit": limit, **({"experiment_id": experiment_id} if experiment_id else {})}
        return self._call("GET", "/runs", params=params)["items"]

    def run(self, run_id: int) -> dict:
        return self._call("GET", f"/runs/{run_id}")

    def follow(self, run_id: int, on_event: Callable[[dict], None], since: int = 0, reconnects: int = 5) -> dict:
        """Call `on_event` for each event of the run from `since`, live, until the stream's `end`; its payload
        ({"run_id", "status", "last_seq"}). A dropped connection resumes from the last seq seen (Last-Event-ID)."""
        import httpx

        last, tries = since, 0
        while True:
            headers = {"Last-Event-ID": str(last)} if last else {}
            try:
                with self.http.stream("GET", f"/runs/{run_id}/stream", headers=headers,
                                      timeout=httpx.Timeout(30.0, read=None)) as r:
                    if r.status_code >= 400:
                        r.read()
                        raise ClientError(f"GET /runs/{run_id}/stream: HTTP {r.status_code}: {r.text[:300]}")
                    for event, id_, data in parse_sse(r.iter_lines()):
                        if event == "end":
                            return json.loads(data)
                        ev = json.loads(data)
                        last = int(id_ or ev.get("seq", last))
                        on_event(ev)
            except (httpx.TransportError, httpx.StreamError) as exc:
                tries += 1
                if tries > reconnects:
                    raise ClientError(f"run {run_id}: the event stream kept dropping ({exc})") from None

    def artifacts(self, run_id: int) -> list[dict]:
        return self._call("GET", f"/runs/{run_id}/artifacts")

    def fetch(self, run_id: int, path: str, out_dir: str | os.PathLike) -> list[Path]:
        """The artifact `path` of the run, or every artifact under the folder `path`, written below `out_dir`
        with their paths in the run directory; the files written."""
        want = path.strip("/")
        listed = [a["path"] for a in self.artifacts(run_id)]
        chosen = [p for p in listed if p == want or not want or p.startswith(want + "/")]
        if not chosen:
            raise ClientError(f"run {run_id} has no artifact {path!r} (`nasforge remote fetch {run_id} ''` lists "
                              f"none; the run has {len(listed)} files)")
        out_root = Path(out_dir).resolve()
        written = []
        for rel in chosen:
            target = (out_root / rel).resolve()
            if out_root not in target.parents:  # the server named a path that would climb out: not written
                raise ClientError(f"artifact {rel!r}: refusing a path outside {out_root}")
            with self.http.stream("GET", f"/runs/{run_id}/artifacts/{rel}") as r:
                if r.status_code >= 400:
                    raise ClientError(f"GET artifact {rel}: HTTP {r.status_code}: {r.read()[:300]!r}")
                # Streamed to disk (a checkpoint may be large), and atomic: a broken download leaves no half file.
                write_atomic(target, lambda fh: [fh.write(chunk) for chunk in r.iter_bytes()])
            written.append(target)
        return written
