"""supervisord event listener: counts each service's restarts and keeps its state in services.json.

Speaks supervisor's listener protocol on stdin/stdout (READY, a header line, a payload, RESULT); anything it says
for people goes to stderr. The file is rewritten atomically on every state change, so /api/health never reads
half of it.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

from nas_core.rundir import write_json

# A move to STARTING from these is a restart: the process had died (EXITED) or failed to start (BACKOFF).
_RESTART_FROM = {"EXITED", "BACKOFF"}


def apply(services: dict, event: str, body: dict[str, str], now: float) -> str | None:
    """Fold one PROCESS_STATE event into `services`; returns a line worth logging, or None."""
    name = body.get("processname", "?")
    state = event.removeprefix("PROCESS_STATE_")
    svc = services.setdefault(name, {"state": "STOPPED", "restarts": 0, "pid": None, "since": now, "last_exit": None})
    svc.update(state=state, since=now)
    if "pid" in body:
        svc["pid"] = int(body["pid"])
    if state == "STARTING" and body.get("from_state") in _RESTART_FROM:
        svc["restarts"] += 1
        return f"nasforge: restarting {name} (restart {svc['restarts']}, try {body.get('tries', '?')})"
    if state == "EXITED" and body.get("expected") == "0":
        svc["last_exit"] = {"at": now, "pid": svc["pid"]}
        return f"nasforge: {name} (pid {svc['pid']}) died; supervisord restarts it"
    if state == "FATAL":
        return f"nasforge: {name} failed to start too many times in a row; supervisord gave up on it"
    return None


def main(path: str) -> None:
    services: dict = {}
    out, inp = sys.stdout, sys.stdin
    while True:
        out.write("READY\n")
        out.flush()
        header = dict(token.split(":", 1) for token in inp.readline().split())
        payload = inp.read(int(header.get("len", 0)))
        event = header.get("eventname", "")
        if event.startswith("PROCESS_STATE_"):
            first = payload.split("\n", 1)[0]
            body = dict(token.split(":", 1) for token in first.split() if ":" in token)
            line = apply(services, event, body, time.time())
            write_json(Path(path), {"services": services}, durable=False)
            if line:
                print(line, file=sys.stderr, flush=True)
        out.write("RESULT 2\nOK")
        out.flush()


if __name__ == "__main__":
    main(sys.argv[1])
