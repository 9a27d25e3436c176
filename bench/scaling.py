"""How the supernet's training step grows: step time and memory against tile size, batch, channels and depth.

`python -m bench scaling [--quick] [sizes=64,128,256,512] [batches=1,2,4] [channels=4,8,16] [depths=1,2,3]
[base_size=128] [base_batch=1] [base_channels=4] [base_depth=2] [steps=2] [threads=0] [plot=docs/scaling.png]`

One axis moves at a time from the base point. A step is the weight step of the search (forward, cross-entropy plus
Dice, backward) of the DARTS U-Net supernet, median of `steps` (after a warm-up on CUDA). Memory: on CUDA the peak allocated
during a step; on CPU the bytes autograd saves for backward (the activations, which dominate). The figure gives
the exponents of the fits time ~ pixels^a and memory ~ pixels^b over the tile sizes (1 is linear in pixels).
"""
from __future__ import annotations

import math
import statistics
from pathlib import Path

import torch

from bench._timing import synchronizer, timed_steps

ROOT = Path(__file__).resolve().parent.parent


def _ints(v) -> list[int]:
    return [int(x) for x in str(v).split(",") if x]


def _model(channels: int, depth: int, device):
    from nas_core.config import parse_experiment
    from nas_core.search.loop import build_search_supernet

    cfg = parse_experiment({"name": "scaling", "space": {"channels": channels, "depth": depth}})
    torch.manual_seed(0)
    return build_search_supernet(cfg).to(device), cfg


def measure(size: int, batch: int, channels: int, depth: int, steps: int, device, precision=None) -> dict:
    """Median step seconds and memory bytes of one configuration."""
    from nas_core.search.loop import search_loss
    from nas_core.train.precision import Precision

    precision = precision or Precision(device.type)
    model, cfg = _model(channels, depth, device)
    precision.prepare(model)
    loss_fn = precision.loss(search_loss)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, cfg.space.in_channels, size, size, generator=g).to(device)
    y = (torch.rand(batch, size, size, generator=g) < 0.1).long().to(device)
    params = list(model.parameters())

    def step():
        loss = loss_fn(model, (x, y))
        torch.autograd.grad(loss, params, allow_unused=True)

    sync = synchronizer(device)
    if device.type == "cuda":  # lazy kernels and allocator pools; a CPU step at these sizes takes seconds already
        step()
        sync()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
    times = timed_steps(step, steps, device)
    if device.type == "cuda":
        memory = torch.cuda.max_memory_allocated(device) - base
    else:
        seen: dict[int, int] = {}

        def pack(t):
            seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            loss = loss_fn(model, (x, y))
        del loss
        memory = sum(seen.values())
    return {"size": size, "batch": batch, "channels": channels, "depth": depth, "step_s": statistics.median(times),
            "memory_bytes": int(memory), "pixels": batch * size * size}


def _slope(points: list[dict], key: str) -> float:
    xs = [math.log(p["pixels"]) for p in points]
    ys = [math.log(max(p[key], 1e-12)) for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    return sum((a - mx) * (b - my) for a, b in zip(xs, ys)) / max(sum((a - mx) ** 2 for a in xs), 1e-12)


def table(rows: list[dict]) -> str:
    out = ["| axis | tile | batch | C | depth | step (s) | memory (MiB) | s per Mpixel |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['axis']} | {r['size']} | {r['batch']} | {r['channels']} | {r['depth']} | {r['step_s']:.3f} | "
                   f"{r['memory_bytes'] / 2**20:.1f} | {r['step_s'] / (r['pixels'] / 1e6):.2f} |")
    return "\n".join(out)


def plot(rows: list[dict], path: Path, title: str) -> None:
    """Log-log step time and memory against pixels per step for each axis, drawn with PIL (no plotting library)."""
    from PIL import Image, ImageDraw

    W, H, M = 720, 300, 46
    img = Image.new("RGB", (W, H), "white")
    d = ImageDraw.Draw(img)
    colours = {"tile": (31, 119, 180), "batch": (255, 127, 14), "channels": (44, 160, 44), "depth": (214, 39, 40)}
    panels = (("step_s", "step time (s)"), ("memory_bytes", "memory (bytes)"))
    pw = (W - 3 * M) // 2
    lx = [math.log10(r["pixels"]) for r in rows]
    for k, (key, label) in enumerate(panels):
        x0 = M + k * (pw + M)
        ly = [math.log10(max(r[key], 1e-12)) for r in rows]
        xmin, xmax, ymin, ymax = min(lx), max(lx), min(ly), max(ly)
        sx = lambda v: x0 + (v - xmin) / max(xmax - xmin, 1e-9) * pw
        sy = lambda v: H - M - (v - ymin) / max(ymax - ymin, 1e-9) * (H - 2 * M)
        d.rectangle([x0, M, x0 + pw, H - M], outline=(0, 0, 0))
        d.text((x0, M - 30), label + " vs pixels per step (log-log)", fill=(0, 0, 0))
        d.text((x0, H - M + 6), f"1e{xmin:.1f}", fill=(0, 0, 0))
        d.text((x0 + pw - 40, H - M + 6), f"1e{xmax:.1f}", fill=(0, 0, 0))
        d.text((x0 - 40, H - M - 10), f"1e{ymin:.1f}", fill=(0, 0, 0))
        d.text((x0 - 40, M), f"1e{ymax:.1f}", fill=(0, 0, 0))
        # A slope-1 guide through the first tile point: linear in pixels.
        tiles = [(a, b) for a, b, r in zip(lx, ly, rows) if r["axis"] == "tile"]
        if tiles:
            a0, b0 = tiles[0]
            a1 = min(xmax, a0 + ymax - b0)  # stop at the frame's top
            d.line([sx(a0), sy(b0), sx(a1), sy(b0 + a1 - a0)], fill=(170, 170, 170), width=1)
        for axis, colour in colours.items():
            pts = [(sx(a), sy(b)) for a, b, r in zip(lx, ly, rows) if r["axis"] == axis]
            if len(pts) > 1:
                d.line(pts, fill=colour, width=2)
            for px, py in pts:
                d.ellipse([px - 3, py - 3, px + 3, py + 3], fill=colour)
    for i, (axis, colour) in enumerate(colours.items()):
        d.text((M + i * 110, H - 18), f"- {axis}", fill=colour)
    d.text((M + 4 * 110, H - 18), "grey: linear in pixels  " + title, fill=(90, 90, 90))
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, optimize=True)


def run(quick: bool = False, sizes="64,128,256,512", batches="1,2,4", channels="4,8,16", depths="1,2,3",
        base_size: int | str = 128, base_batch: int | str = 1, base_channels: int | str = 4, base_depth: int | str = 2,
        steps: int | str = 2, threads: int | str = 0, plot_path: str = "docs/scaling.png", device: str = "auto",
        **_) -> dict:
    if quick:
        sizes, batches, channels, depths, base_size, base_depth, steps = "16,32", "1,2", "4", "1", 16, 1, 1
        plot_path = ""
    if int(threads):
        torch.set_num_threads(int(threads))
    dev = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else ("cpu" if device == "auto" else device))
    base = {"size": int(base_size), "batch": int(base_batch), "channels": int(base_channels), "depth": int(base_depth)}
    axes = {"tile": ("size", _ints(sizes)), "batch": ("batch", _ints(batches)),
            "channels": ("channels", _ints(channels)), "depth": ("depth", _ints(depths))}
    rows, cache = [], {}
    for axis, (key, values) in axes.items():
        for v in values:
            point = {**base, key: v}
            k = tuple(sorted(point.items()))
            if k not in cache:
                cache[k] = measure(**point, steps=int(steps), device=dev)
            rows.append({"axis": axis, **cache[k]})
    tiles = [r for r in rows if r["axis"] == "tile"]
    a, b = _slope(tiles, "step_s"), _slope(tiles, "memory_bytes")
    bt = [r for r in rows if r["axis"] == "batch"]
    where = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    if plot_path:
        plot(rows, ROOT / plot_path, where)
    big = max(tiles, key=lambda r: r["size"])
    figure = (f"supernet weight step over tiles {tiles[0]['size']}-{big['size']} px (batch {base['batch']}, "
              f"C={base['channels']}, depth {base['depth']}): time ~ pixels^{a:.2f}, memory ~ pixels^{b:.2f}"
              + (f", batch {bt[0]['batch']}->{bt[-1]['batch']} time x{bt[-1]['step_s'] / bt[0]['step_s']:.1f}" if len(bt) > 1 else "")
              + f"; {big['size']} px: {big['step_s']:.2f} s, {big['memory_bytes'] / 2**20:.0f} MiB; {where}")
    return {"figure": figure, "rows": rows, "time_exponent": a, "memory_exponent": b, "table": table(rows),
            "plot": plot_path or None, "device": str(dev)}
