"""One trial: a candidate trained and evaluated in a child process, so the process that dispatches trials
never loads the framework and a crash, an out-of-memory kill or an overrun takes down only the child.

A trial spec is JSON: {"trial", "attempt", "genotype", "budget", "seed", "objective", "params", "time_limit_s"}.
The objective is a dotted path `module:function` that must be in `ALLOWED_OBJECTIVES`, never code from a form;
it is called as `objective(genotype, budget, seed, params)` and returns a dict with `iou` (validation IoU, the
score to maximise) and optionally `params_count`, `flops`, `proxies` and `train_seconds`; `params` also carries `trial` and `attempt`.
"""
from __future__ import annotations

import ctypes
import hashlib
import importlib
import json
import math
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from nas_core.rundir import RunDir, write_json

SYNTHETIC = "nas_core.discrete.trial:synthetic_objective"
TRAIN = "nas_core.discrete._candidate:train_candidate"
# Pre-screening: the proxies-only counterpart of each trial function (no training, `iou` None).
SCORERS = {SYNTHETIC: "nas_core.discrete.trial:synthetic_scores", TRAIN: "nas_core.discrete._candidate:score_candidate"}
# Adding a trial function is a code change, reviewed like any other; a form can only pick among these.
ALLOWED_OBJECTIVES = (SYNTHETIC, TRAIN, *SCORERS.values())
STATUSES = ("ok", "error", "killed", "timeout")


def check_objective(path: str) -> str:
    if path not in ALLOWED_OBJECTIVES:
        raise ValueError(f"objective: {path!r} is not an allowed trial function; use one of {', '.join(ALLOWED_OBJECTIVES)}")
    return path


def load_objective(path: str) -> Callable[..., dict[str, Any]]:
    module, _, name = check_objective(path).partition(":")
    return getattr(importlib.import_module(module), name)


def run_trial(
    spec: dict[str, Any], *, worker: int = 0, gpu: int | None = None, run_dir: str | os.PathLike | None = None,
    heartbeat: Callable[[], None] | None = None, heartbeat_s: float = 10.0,
) -> dict[str, Any]:
    """Run `spec` in a child Python process and return its result; never raises for a failing trial.

    The child's output goes to the run directory's trial log (`RunDir.trial_log`) when `run_dir` is given.
    `heartbeat` is called every `heartbeat_s` while the child runs, so a dispatcher can tell a long trial
    from a dead worker.
    """
    check_objective(spec["objective"])
    env = dict(os.environ)
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = str(gpu)
    limit = spec.get("time_limit_s")
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="nasforge-trial-") as tmp:
        out = Path(tmp) / "result.json"
        log_path = RunDir(run_dir).trial_log(spec["trial"], spec["attempt"]) if run_dir else Path(tmp) / "log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "wb") as log:
            child = subprocess.Popen(
                [sys.executable, "-m", "nas_core.discrete.trial", str(out)],
                stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT, env=env,
                start_new_session=True, preexec_fn=_die_with_parent,
            )
            child.stdin.write(json.dumps(spec).encode())
            child.stdin.close()
            rc = _wait(child, limit, heartbeat, heartbeat_s)
        result = _collect(spec, rc, out, log_path, limit)
    # The host with the rank: across nodes, where a trial ran is where its logs and its GPU were.
    result.update(worker=worker, host=socket.gethostname(), started=started, finished=time.time())
    return result


def run_inline(spec: dict[str, Any], *, worker: int = 0) -> dict[str, Any]:
    """Run `spec` in this process (no isolation: a kill or an overrun is not survived); for one-process use."""
    started = time.time()
    try:
        result = _execute(spec)
    except Exception as exc:  # the trial's failure is data, not the caller's crash
        result = _base_result(spec, "error")
        result["error"] = f"{type(exc).__name__}: {exc}"
    result.update(worker=worker, host=socket.gethostname(), started=started, finished=time.time())
    return result


def _base_result(spec: dict[str, Any], status: str) -> dict[str, Any]:
    return {"trial": spec["trial"], "attempt": spec["attempt"], "stage": spec.get("stage", "train"),
            "genotype": spec["genotype"], "status": status,
            "iou": None, "train_time_s": None, "params_count": None, "flops": None, "proxies": {}, "error": None}


def _execute(spec: dict[str, Any]) -> dict[str, Any]:
    objective = load_objective(spec["objective"])
    t0 = time.perf_counter()
    params = {**spec.get("params", {}), "trial": spec["trial"], "attempt": spec["attempt"]}
    out = objective(spec["genotype"], spec.get("budget", {}), spec["seed"], params)
    iou = None if out.get("iou") is None and spec["objective"] in SCORERS.values() else float(out["iou"])
    if iou is not None and not math.isfinite(iou):
        raise ValueError(f"objective returned a non-finite iou {iou!r}")
    result = _base_result(spec, "ok")
    # The trainer's own clock leaves out data loading; a function without one is timed whole.
    elapsed = out.get("train_seconds", time.perf_counter() - t0)
    result.update(iou=iou, train_time_s=elapsed, params_count=out.get("params_count"), flops=out.get("flops"),
                  proxies=dict(out.get("proxies") or {}))
    return result


def _collect(spec: dict[str, Any], rc: int | None, out: Path, log_path: Path, limit: float | None) -> dict[str, Any]:
    if rc == 0 and out.exists():
        return json.loads(out.read_text())
    if rc is None:
        result = _base_result(spec, "timeout")
        result["error"] = f"trial {spec['trial']} overran its time limit of {limit} s and was killed"
    elif rc < 0:
        result = _base_result(spec, "killed")
        result["error"] = f"trial {spec['trial']} was killed by signal {signal.Signals(-rc).name} (out of memory or kill -9?)"
    else:
        result = _base_result(spec, "error")
        tail = log_path.read_text(errors="replace").strip().splitlines()[-1:] if log_path.exists() else []
        result["error"] = f"trial {spec['trial']} exited with code {rc}: {tail[0] if tail else 'no output'}"
    return result


def _die_with_parent() -> None:
    # If the worker rank itself is killed, its trial must not live on as an orphan holding a GPU.
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _wait(child: subprocess.Popen, limit: float | None, heartbeat: Callable[[], None] | None, every: float) -> int | None:
    """The child's return code, or None after killing it for overrunning `limit`."""
    deadline = None if limit is None else time.monotonic() + limit
    while True:
        left = None if deadline is None else deadline - time.monotonic()
        step = left if heartbeat is None else (every if left is None else min(every, left))
        try:
            return child.wait(timeout=None if step is None else max(step, 0))
        except subprocess.TimeoutExpired:
            if deadline is not None and time.monotonic() >= deadline:
                _kill_group(child)
                return None
            if heartbeat is not None:
                heartbeat()


def _kill_group(child: subprocess.Popen) -> None:
    try:
        os.killpg(child.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    child.wait()


# --- the synthetic objective: cheap, deterministic in the genotype, with faults on request for tests ---

def synthetic_objective(genotype: dict[str, Any], budget: dict[str, Any], seed: int, params: dict[str, Any]) -> dict[str, Any]:
    """A separable score in [0, 1]: the mean over the genotype's leaves of a hash of (path, value).

    Params: `salt` (another landscape), `sleep_s` (fixed duration) or `sleep_lognormal` ({"median", "sigma"},
    drawn from the trial seed), `state_dir` (a start marker per execution; faults fire once per trial there),
    and fault lists of trial numbers that fire on attempt 0: `raise_on`, `kill_on` (SIGKILL to itself),
    `hang_on` (sleeps past any limit), `kill_worker_on` (SIGKILL to the parent, the worker rank),
    `stop_worker_on` (SIGSTOP to the parent: a hung worker rank). `proxies: true` adds two stand-in proxy
    scores of known rank correlation with the score.
    """
    trial, attempt = int(params.get("trial", -1)), int(params.get("attempt", 0))
    state = Path(params["state_dir"]) if params.get("state_dir") else None
    if state is not None:
        state.mkdir(parents=True, exist_ok=True)
        (state / f"start-{trial}-{attempt}-{os.getpid()}").touch()

    def fires(kind: str) -> bool:
        if trial not in params.get(kind, ()) or attempt != 0:
            return False
        if state is None:
            return True
        try:  # exclusive create: a restarted search does not fire the same fault again
            os.close(os.open(state / f"fired-{kind}-{trial}", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            return True
        except FileExistsError:
            return False

    if fires("raise_on"):
        raise RuntimeError(f"synthetic failure of trial {trial}")
    if fires("kill_on"):
        os.kill(os.getpid(), signal.SIGKILL)
    if fires("kill_worker_on"):
        if state is not None:  # which worker died, for a test to check the rank the search names
            (state / f"killed-worker-{trial}-{os.getppid()}").touch()
        os.kill(os.getppid(), signal.SIGKILL)
        os._exit(1)
    if fires("stop_worker_on"):  # the worker rank freezes without dying: only its silence tells
        os.kill(os.getppid(), signal.SIGSTOP)
    if fires("hang_on"):
        time.sleep(3600)
    if params.get("sleep_lognormal"):
        p = params["sleep_lognormal"]
        time.sleep(random.Random(seed).lognormvariate(math.log(p["median"]), p["sigma"]))
    elif params.get("sleep_s"):
        time.sleep(float(params["sleep_s"]))
    leaves = list(_leaves(genotype))
    salt = str(params.get("salt", ""))
    score = sum(_unit_hash(f"{salt}|{path}|{value}") for path, value in leaves) / max(len(leaves), 1)
    proxies = {}
    if params.get("proxies"):  # stand-ins with known rank correlation to the score: -1 and +1
        proxies = {"inverse": -score, "monotone": score ** 3}
    return {"iou": score, "params_count": 1000 * len(leaves), "proxies": proxies}


def synthetic_scores(genotype: dict[str, Any], budget: dict[str, Any], seed: int, params: dict[str, Any]) -> dict[str, Any]:
    """Pre-screening with the synthetic objective: its stand-in proxies, no IoU."""
    out = synthetic_objective(genotype, budget, seed, {**params, "proxies": True, "sleep_s": 0, "sleep_lognormal": None})
    return {"iou": None, "params_count": out["params_count"], "proxies": out["proxies"]}


def _leaves(obj: Any, path: str = "") -> Any:
    if isinstance(obj, dict):
        for k in sorted(obj):
            yield from _leaves(obj[k], f"{path}/{k}")
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from _leaves(v, f"{path}/{i}")
    else:
        yield path, obj


def _unit_hash(text: str) -> float:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big") / 2**64


def _main(argv: list[str]) -> int:
    spec = json.loads(sys.stdin.read())
    result = _execute(spec)
    # Atomic: a child killed while writing leaves no result, which the worker reports as a killed trial.
    write_json(argv[0], result, indent=None)
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
