"""Peak memory and step time of a PC-DARTS (K=4) search step against DARTS at the same batch size.

One search step = the architecture update (first order) + the weight update, on the U-Net supernet. Each method is
measured in a fresh process. On a GPU the peak is `torch.cuda.max_memory_allocated` during a step after a warm-up;
on a CPU it is the growth of the process's peak RSS over its size before the first step, next to the bytes the
autograd graph saves for backward in one forward pass (the activations, which dominate either way).

    python -m bench pcdarts_memory [--quick] [tile=128] [batch=8] [channels=16] [depth=2] [k=4] [steps=5]
"""
from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GOAL = 0.4


def _rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _measure(method: str, tile: int, batch: int, channels: int, depth: int, k: int, steps: int, threads: int) -> dict:
    import torch
    from torch import nn

    from bench._timing import timed_steps
    from nas_core.config import parse_experiment
    from nas_core.search.architect import build_architect
    from nas_core.search.loop import build_search_supernet, search_loss

    torch.set_num_threads(threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    cfg = parse_experiment({"name": "bench", "space": {"channels": channels, "depth": depth},
                            "search": {"method": method, "pc_k": k, "warmup_epochs": 0}})
    torch.manual_seed(0)
    model = build_search_supernet(cfg).to(device)
    architect = build_architect(cfg.search, model, search_loss)
    w = list(model.weight_parameters())
    opt = torch.optim.SGD(w, lr=0.025, momentum=0.9, weight_decay=3e-4)
    g = torch.Generator().manual_seed(0)

    def batch_():
        x = torch.randn(batch, 3, tile, tile, generator=g)
        y = (torch.rand(batch, tile, tile, generator=g) < 0.1).long()
        return x.to(device), y.to(device)

    train, val = batch_(), batch_()

    def step():
        architect.step(train, val, 0.025, opt)
        opt.zero_grad(set_to_none=True)
        search_loss(model, train).backward()
        nn.utils.clip_grad_norm_(w, 5.0)
        opt.step()

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    # The bytes autograd keeps for backward in one forward: counted once per storage.
    seen: dict[int, int] = {}

    def pack(t):
        if t.device.type != "meta":
            s = t.untyped_storage()
            seen[s.data_ptr()] = s.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = search_loss(model, train)
    del loss
    saved = sum(seen.values())

    rss0 = _rss_bytes()
    step()  # warm-up: allocator pools, lazy kernels
    sync()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    times = timed_steps(step, steps, device)
    out = {"method": method, "device": str(device), "step_s": statistics.median(times), "steps": steps,
           "saved_activation_bytes": saved, "params": sum(p.numel() for p in w)}
    if device.type == "cuda":
        out["peak_bytes"] = torch.cuda.max_memory_allocated()
        out["peak_over_base_bytes"] = out["peak_bytes"] - base
        out["gpu"] = torch.cuda.get_device_name(0)
    else:
        out["peak_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - rss0
    return out


def _child() -> None:
    print("RESULT " + json.dumps(_measure(**json.loads(sys.argv[1]))), flush=True)


def _in_process(params: dict) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", "from bench.pcdarts_memory import _child; _child()", json.dumps(params)],
                          capture_output=True, text=True, env=env, cwd=ROOT)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"pcdarts_memory: the {params['method']} measurement failed:\n{proc.stderr[-3000:]}")


def run(quick: bool = False, **params) -> dict:
    p = {"tile": 32 if quick else 128, "batch": 2 if quick else 8, "channels": 8 if quick else 16,
         "depth": 1 if quick else 2, "k": 4, "steps": 1 if quick else 5, "threads": 1}
    p.update({key: int(v) for key, v in params.items()})
    darts = _in_process({**p, "method": "darts"})
    pc = _in_process({**p, "method": "pcdarts"})
    mib = lambda b: b / 2**20
    ratio = pc["peak_bytes"] / darts["peak_bytes"]
    saved_ratio = pc["saved_activation_bytes"] / darts["saved_activation_bytes"]
    time_ratio = pc["step_s"] / darts["step_s"]
    where = darts.get("gpu", f"CPU, {p['threads']} thread(s)")
    figure = (f"PC-DARTS K={p['k']} peak memory {ratio:.2f}x DARTS ({mib(pc['peak_bytes']):.0f} vs "
              f"{mib(darts['peak_bytes']):.0f} MiB; saved activations {saved_ratio:.2f}x), step time {time_ratio:.2f}x "
              f"({pc['step_s']:.3f} vs {darts['step_s']:.3f} s); batch {p['batch']}, {p['tile']} px, C={p['channels']}, "
              f"depth {p['depth']}, {where}; goal <= {GOAL}x: {'met' if ratio <= GOAL else 'not met'}")
    return {"figure": figure, "params": p, "darts": darts, "pcdarts": pc, "peak_ratio": ratio,
            "saved_activation_ratio": saved_ratio, "step_time_ratio": time_ratio, "goal_met": ratio <= GOAL}
