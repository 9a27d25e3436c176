"""How the run page's alpha view costs in Chromium as the history grows: fold the events, then time one live
redraw (three heatmaps, three entropy plots, the parameter-free share: the run page's two figures from
js/alpha_view.js) and one slider step (heatmaps only),
at a short history (the baseline) and at `epochs` of history. Drawing goes through the page's own path
(js/dom.js draw -> js/redraw.js: lines moved by Plotly.animate, heatmaps restyled when only data changed, react
otherwise). The UI redraws at most 5 times a second, so a redraw under 200 ms keeps up; the budget is 100 ms on a
quiet machine."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

_JS = """async ({epochs, cellTypes, edges, ops, reps}) => {
  const fig = await import('/js/figures.js'); const rs = await import('/js/runstate.js'); const {draw} = await import('/js/dom.js'); const av = await import('/js/alpha_view.js');
  let seed = 1;
  const rand = () => { seed = (seed * 16807) % 2147483647; return seed / 2147483647; };
  const opNames = Array.from({length: ops}, (_, i) => 'op' + i);
  const edgeNames = Array.from({length: edges}, (_, i) => `${i % 2}->${2 + (i >> 1)}`);
  const event = (e) => { const cells = {};
    for (const ct of cellTypes) cells[ct] = {alpha: edgeNames.map(() => opNames.map(() => rand() * 2)), edges: edgeNames, ops: opNames};
    return {seq: e + 1, kind: 'alpha', payload: {epoch: e, step: e, cells}}; };
  const box = document.getElementById('plots');
  const div = (k) => document.getElementById(k) || box.appendChild(Object.assign(document.createElement('div'),
      {id: k, style: 'width:1320px;display:block'}));
  // `paint`: the page's draw (incremental), or plain Plotly.react as before it, measured side by side.
  const react = (d, f) => Plotly.react(d, f.data, f.layout);
  let paint = draw;
  // The run page's own figures (js/alpha_view.js): the heatmaps of every cell in one figure, the history lines in
  // another, in a container as wide as the page's on a 1400 px window.
  const W = 1320;
  // Timed until both are drawn: lines moved by Plotly.animate (js/redraw.js) are drawn on the next animation
  // frame, so their time includes the wait for it.
  const drawAll = (s, lines) => {
    const last = s.alpha.frames.length - 1;
    // As the run page draws a live run: no printed numbers while following (js/pages/run.js).
    const done = [paint(div('heatmaps'), av.heatmapsFigure(s, last, {compact: lines, width: W}))];
    if (lines) done.push(paint(div('history'), av.historyFigure(s, {width: W})));
    return Promise.all(done);
  };
  const median = (xs) => { const v = [...xs].sort((a, b) => a - b); return v[v.length >> 1]; };
  const measure = async (n) => {
    box.replaceChildren();
    const evs = Array.from({length: n + reps}, (_, e) => event(e));
    const s = rs.createRunState();
    let t0 = performance.now(); rs.applyEvents(s, evs.slice(0, n)); const fold = performance.now() - t0;
    await drawAll(s, true);  // first draw builds the plots; what follows are updates, as on a live page
    const live = [], scrub = [];
    for (let r = 0; r < reps; r++) {
      t0 = performance.now(); rs.applyEvent(s, evs[n + r]); await drawAll(s, true); live.push(performance.now() - t0);
    }
    for (let r = 0; r < reps; r++) {
      const k = Math.floor(rand() * s.alpha.frames.length);
      t0 = performance.now();
      await paint(div('heatmaps'), av.heatmapsFigure(s, k, {width: W}));
      scrub.push(performance.now() - t0);
    }
    return {epochs: n, fold_ms: fold, live_redraw_ms: median(live), scrub_ms: median(scrub)};
  };
  const out = {short: await measure(10), long: await measure(epochs)};
  paint = react;
  out.react_long = await measure(epochs);
  return out;
}"""


def _burners(n: int) -> list[subprocess.Popen]:
    """`n` busy processes for the measurement's duration: "at load 4" made reproducible instead of waited for."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def run(quick: bool = False, epochs: int | str = 300, reps: int | str = 15, cells: int | str = 3, edges: int | str = 14,
        ops: int | str = 8, burn: int | str = 0) -> dict:
    import uvicorn
    from fastapi import FastAPI
    from playwright.sync_api import sync_playwright

    from backend.frontend import mount_frontend
    from deploy.local import free_port, wait_port

    epochs, reps = (30, 3) if quick else (int(epochs), int(reps))
    cell_types = ["normal", "down", "up", "reduce"][: int(cells)]
    app = FastAPI()
    mount_frontend(app)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    burners = _burners(int(burn))
    try:
        wait_port(port, timeout=30, what="the static UI server")
        chromium = next((p for p in ("/usr/bin/chromium", "/usr/bin/chromium-browser") if Path(p).exists()), None)
        if chromium is None:
            raise RuntimeError("Chromium not found: install the Debian package chromium (scripts/install-system.sh)")
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"http://127.0.0.1:{port}/css/app.css")
            page.set_content('<script src="/vendor/plotly.min.js"></script><div id="plots"></div>')
            page.wait_for_function("() => window.Plotly !== undefined")
            out = page.evaluate(_JS, {"epochs": epochs, "cellTypes": cell_types, "edges": int(edges), "ops": int(ops), "reps": reps})
            browser.close()
        load = os.getloadavg()[0]  # the machine is shared: the absolute times scale with what else runs
    finally:
        for b in burners:
            b.kill()
            b.wait()
        server.should_exit = True
        thread.join(10)
    short, long, react = out["short"], out["long"], out["react_long"]
    ratio = long["live_redraw_ms"] / max(short["live_redraw_ms"], 1e-9)
    return {
        "figure": (f"{epochs} epochs of alpha ({len(cell_types)} cells x {edges} edges x {ops} ops): live redraw "
                   f"{long['live_redraw_ms']:.0f} ms to both figures drawn ({ratio:.2f}x the 10-epoch baseline; with the wait for "
                   f"the animation frame the history's lines are drawn in), slider step {long['scrub_ms']:.0f} ms, "
                   f"fold {long['fold_ms']:.0f} ms; plain Plotly.react in the same run: live {react['live_redraw_ms']:.0f} ms, "
                   f"slider {react['scrub_ms']:.0f} ms; budget 100 ms quiet, 200 ms at load 4; {int(burn)} busy processes "
                   f"added, load average {load:.1f}"),
        "short": short, "long": long, "react_long": react, "live_ratio": ratio, "load_average": load,
        "params": {"epochs": epochs, "reps": reps, "cells": cell_types, "edges": int(edges), "ops": int(ops), "burn": int(burn)},
    }
