"""The UI at 1,000 runs: how long the experiment list, an experiment's runs table (one page of 50 out of 1,000, by
id and sorted by headline IoU, which the server computes over all 1,000) and a compare of 4 runs x 300 epochs of
alpha take to paint in Chromium, against a 1 s budget. Everything is seeded through the real API (launch, ingest)
on a fresh data directory with its own Redis and no worker, so the runs stay queued with the events given them."""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

# In the page: set the route, then resolve once `ready` (a JS expression) holds, polled each animation frame.
_PAINT = """async ({route, ready}) => {
  const t0 = performance.now();
  location.hash = route;
  const check = new Function('return (' + ready + ')');
  await new Promise((resolve, reject) => { const tick = () => {
    try { if (check()) return resolve(); } catch (e) { /* not drawn yet */ }
    if (performance.now() - t0 > 30000) return reject(new Error('not painted after 30 s: ' + ready));
    requestAnimationFrame(tick); }; tick(); });
  return performance.now() - t0;
}"""


def _token(env: dict) -> str:
    out = subprocess.run([sys.executable, "-m", "backend.core.security", "create-admin-token", "bench"], env={**os.environ, **env},
                         capture_output=True, text=True, timeout=120, check=True)
    return out.stdout.strip().splitlines()[-1]


def _seed(http: httpx.Client, runs: int, experiments: int, epochs: int, compared: int) -> dict:
    def call(method: str, path: str, **kw):
        r = http.request(method, path, **kw)
        r.raise_for_status()
        return r.json() if r.content else None

    base = {"search": {"method": "darts", "epochs": epochs}, "baseline": {"random": False},
            "data": {"tile_size": 32, "num_tiles": 8}, "space": {"channels": 4, "depth": 1}}
    for i in range(experiments - 1):
        call("POST", "/api/experiments", json={**base, "name": f"scale-other-{i:03d}"})
    exp = call("POST", "/api/experiments", json={**base, "name": "scale-1000"})
    rng = np.random.default_rng(0)
    ids = []
    for i in range(runs):
        run_id = call("POST", f"/api/experiments/{exp['id']}/runs", json={"baselines": False})["run"]["id"]
        ids.append(run_id)
        events = [{"seq": 1, "kind": "metric", "payload": {"stage": "search", "epoch": 0, "val_iou": float(rng.uniform(0.2, 0.6))}}]
        if i % 2 == 0:  # half have a test IoU, half only the search's validation mIoU
            events.append({"seq": 2, "kind": "evaluation", "payload": {"stage": "evaluate", "split": "test", "params": 1000 + i,
                                                                       "iou": [0.9, float(rng.uniform(0.1, 0.8))]}})
        call("POST", f"/api/runs/{run_id}/events", json=events)
    ops = ["none", "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5"]
    edges = [f"{i % 2}→{2 + (i >> 1)}" for i in range(14)]
    for run_id in ids[:compared]:
        seq = 100
        for start in range(0, epochs, 50):
            batch = []
            for e in range(start, min(start + 50, epochs)):
                cells = {ct: {"alpha": rng.dirichlet(np.ones(8), size=14).tolist(), "edges": edges, "ops": ops} for ct in ("normal", "down", "up")}
                seq += 1
                batch.append({"seq": seq, "kind": "alpha", "payload": {"epoch": e, "step": e, "cells": cells}})
                seq += 1
                batch.append({"seq": seq, "kind": "metric", "payload": {"stage": "search", "epoch": e, "val_iou": 0.3 + e / (4 * epochs)}})
            call("POST", f"/api/runs/{run_id}/events", json=batch)
    return {"experiment": exp["id"], "runs": ids}


def run(quick: bool = False, runs: int | str = 1000, experiments: int | str = 60, epochs: int | str = 300, reps: int | str = 3) -> dict:
    from playwright.sync_api import sync_playwright

    from deploy.local import Stack, free_port

    runs, experiments, epochs, reps = (40, 5, 30, 1) if quick else (int(runs), int(experiments), int(epochs), int(reps))
    compared = 4
    with tempfile.TemporaryDirectory(prefix="nasforge-ui-scale-") as tmp, Stack(Path(tmp)) as stack:
        redis = stack.redis()
        env = {"REDIS_URL": redis, "NASFORGE_DATA_DIR": str(Path(tmp) / "data"), "PYTHONUNBUFFERED": "1"}
        port = free_port()
        stack.api(env, port)
        url = f"http://127.0.0.1:{port}"
        token = _token(env)
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=120) as http:
            t0 = time.perf_counter()
            seeded = _seed(http, runs, experiments, epochs, compared)
            seed_s = time.perf_counter() - t0
            print(f"seeded {runs} runs in {seed_s:.0f} s", file=sys.stderr)
            api_ms = {}
            for name, params in (("runs_page", {"experiment_id": seeded["experiment"], "limit": 50}),
                                 ("runs_page_sorted_by_iou", {"experiment_id": seeded["experiment"], "limit": 50, "sort": "-iou"})):
                times = []
                for _ in range(reps):
                    t = time.perf_counter()
                    http.get("/api/runs", params=params).raise_for_status()
                    times.append(1000 * (time.perf_counter() - t))
                api_ms[name] = statistics.median(times)
            # The compare page's one request: 4 runs' alpha histories, built and serialised by the API.
            times = []
            for _ in range(reps):
                t = time.perf_counter()
                http.get("/api/compare", params={"runs": seeded["runs"][:compared]}).raise_for_status()
                times.append(1000 * (time.perf_counter() - t))
            api_ms["compare"] = statistics.median(times)
        exp, ids = seeded["experiment"], seeded["runs"]
        views = {
            "experiment_list": ("#/experiments", f"document.querySelectorAll('table.list tbody tr').length === {min(25, experiments)}"),
            "runs_table": (f"#/experiments/{exp}", f"document.querySelectorAll('#runs tr[data-run]').length === {min(50, runs)}"),
            "runs_table_sorted_by_iou": (f"#/experiments/{exp}?sort=-iou",
                                         f"document.querySelectorAll('#runs tr[data-run]').length === {min(50, runs)}"),
            "compare_4x300": (f"#/compare?runs={','.join(map(str, ids[:compared]))}",
                              f"[...document.querySelectorAll(\"#compare-alpha [data-fig='alpha']\")].filter((d) => d.data && d.data.length === 3).length === {compared} && "
                              "document.querySelector(\"[data-fig='val-iou']\") && document.querySelector(\"[data-fig='val-iou']\").data"),
        }
        chromium = next((p for p in ("/usr/bin/chromium", "/usr/bin/chromium-browser") if Path(p).exists()), None)
        if chromium is None:
            raise RuntimeError("Chromium not found: install the Debian package chromium (scripts/install-system.sh)")
        paint, parts = {}, []
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{url}/#token={token}")
            page.wait_for_function("() => location.hash === '#/experiments' && document.querySelector('table.list tbody tr')")
            for name, (route, ready) in views.items():
                times = []
                for _ in range(reps):
                    page.evaluate("() => { location.hash = '#/new'; }")  # away and back: every paint starts from nothing
                    page.wait_for_selector("#experiment-form")
                    page.evaluate("() => performance.clearMeasures()")
                    times.append(page.evaluate(_PAINT, {"route": route, "ready": ready}))
                    if name == "compare_4x300":  # where the compare's time goes (js/pages/compare.js marks)
                        parts.append(page.evaluate("() => Object.fromEntries(performance.getEntriesByType('measure')"
                                                   ".filter((m) => m.name.startsWith('compare:')).map((m) => [m.name.slice(8), m.duration]))"))
                paint[name] = statistics.median(times)
            browser.close()
        load = os.getloadavg()[0]
    worst = max(paint.values())
    split = {k: statistics.median(p.get(k, 0) for p in parts) for k in (parts[0] if parts else {})}
    compare_parts = ", ".join(f"{k} {v:.0f}" for k, v in split.items()) or "no parts measured"
    return {
        "figure": (f"{runs} runs ({experiments} experiments): paint of the experiment list {paint['experiment_list']:.0f} ms, "
                   f"runs table (50 of {runs}) {paint['runs_table']:.0f} ms, sorted by IoU {paint['runs_table_sorted_by_iou']:.0f} ms, "
                   f"compare {compared} runs x {epochs} epochs {paint['compare_4x300']:.0f} ms (budget 1000 ms: "
                   f"{'met' if worst < 1000 else 'missed'}; {compare_parts}); API page {api_ms['runs_page']:.0f} ms, sorted by IoU "
                   f"{api_ms['runs_page_sorted_by_iou']:.0f} ms, compare {api_ms['compare']:.0f} ms; load average {load:.1f}"),
        "paint_ms": paint, "compare_parts_ms": split, "api_ms": api_ms, "seed_s": seed_s, "load_average": load,
        "params": {"runs": runs, "experiments": experiments, "epochs": epochs, "compared": compared, "reps": reps},
    }
