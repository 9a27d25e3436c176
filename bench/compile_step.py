"""`torch.compile` (inductor) of the weight step against eager on the CPU (a CUDA variant is not written yet), on
the DARTS supernet and on its decoded network: the first compiled step (tracing + inductor codegen + the C++
compiler, from a cold cache), the step time after it, and the loss difference on the same weights and batch.

`python -m bench compile_step [--quick] [target=supernet,decoded] [size=16] [batch=4] [channels=4] [depth=1]
[nodes=2] [ops=skip_connect,conv_3x3] [steps=5] [threads=1] [limit_s=900]`. Each target compiles in a child
process with its own empty inductor cache (TORCHINDUCTOR_CACHE_DIR), so the figure is what a fresh machine pays;
a child past `limit_s` is stopped and reported as such. The options are nas_core.train.precision's own.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _child(target: str, size: int, batch: int, channels: int, depth: int, nodes: int, ops: list[str],
           steps: int) -> dict:
    import statistics

    import torch

    from bench._timing import timed_steps
    from nas_core.config import parse_experiment
    from nas_core.search.loop import build_search_supernet, search_loss
    from nas_core.train.precision import Precision

    cells = {t: {"ops": ops, "nodes": nodes} for t in ("normal", "down", "up")}
    cfg = parse_experiment({"name": "compile", "space": {"channels": channels, "depth": depth, "cells": cells}})
    torch.manual_seed(0)
    model = build_search_supernet(cfg)
    if target == "decoded":
        from nas_core.space.network import build_network

        model = build_network(model.genotype(), cfg.space)
    model.train()
    g = torch.Generator().manual_seed(0)
    batch_ = (torch.randn(batch, 3, size, size, generator=g), torch.randint(0, 2, (batch, size, size), generator=g))
    w = [p for p in (model.weight_parameters() if hasattr(model, "weight_parameters") else model.parameters())]
    out = {}
    for name, precision in (("eager", Precision("cpu")), ("compiled", Precision("cpu", compile=True))):
        loss_fn = precision.loss(search_loss, compiled=True)

        def step():
            loss = loss_fn(model, batch_)
            torch.autograd.grad(loss, w, allow_unused=True)
            return float(loss.detach())

        t0 = time.perf_counter()
        first = step()
        first_s = time.perf_counter() - t0
        times = timed_steps(step, steps, torch.device("cpu"))
        out[name] = {"first_step_s": round(first_s, 2), "step_s": round(statistics.median(times), 4), "loss": first}
    out["loss_rel_diff"] = abs(out["compiled"]["loss"] - out["eager"]["loss"]) / abs(out["eager"]["loss"])
    out["params"] = sum(p.numel() for p in w)
    return out


def run(quick: bool = False, target: str = "supernet,decoded", size: int | str = 16, batch: int | str = 4,
        channels: int | str = 4, depth: int | str = 1, nodes: int | str = 2, ops: str = "skip_connect,conv_3x3",
        steps: int | str = 5, threads: int | str = 1, limit_s: int | str = 900, **_) -> dict:
    if quick:
        target, steps = "decoded", 1
    params = {"size": int(size), "batch": int(batch), "channels": int(channels), "depth": int(depth),
              "nodes": int(nodes), "ops": ops.split(","), "steps": int(steps)}
    rows = {}
    for t in target.split(","):
        with tempfile.TemporaryDirectory(prefix="inductor-cold-") as cache:
            env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": cache, "OMP_NUM_THREADS": str(threads)}
            code = ("import json, sys; from bench.compile_step import _child; "
                    f"print('RESULT ' + json.dumps(_child({t!r}, **json.loads(sys.argv[1]))))")
            t0 = time.monotonic()
            try:
                proc = subprocess.run([sys.executable, "-c", code, json.dumps(params)], cwd=ROOT, env=env,
                                      capture_output=True, text=True, timeout=int(limit_s))
            except subprocess.TimeoutExpired:
                rows[t] = {"error": f"not finished within {limit_s} s"}
                continue
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
            if proc.returncode != 0 or not lines:
                rows[t] = {"error": f"exit {proc.returncode}: {proc.stderr.strip().splitlines()[-1:]}"}
                continue
            rows[t] = {**json.loads(lines[-1][7:]), "wall_s": round(time.monotonic() - t0, 1)}
    parts = []
    for t, r in rows.items():
        if "error" in r:
            parts.append(f"{t}: {r['error']}")
            continue
        e, c = r["eager"], r["compiled"]
        parts.append(f"{t} ({r['params']} weights): first compiled step {c['first_step_s']:.0f} s, then "
                     f"{c['step_s'] * 1e3:.1f} ms/step against eager {e['step_s'] * 1e3:.1f} ms "
                     f"({e['step_s'] / c['step_s']:.2f}x), loss diff {r['loss_rel_diff']:.1e}")
    p = params
    head = (f"inductor, cold cache, {threads} thread(s), batch {p['batch']} x {p['size']} px, C={p['channels']}, "
            f"depth {p['depth']}, {p['nodes']} nodes, ops {'/'.join(p['ops'])}")
    return {"figure": head + ": " + "; ".join(parts), "rows": rows, "params": {**params, "threads": int(threads)}}
