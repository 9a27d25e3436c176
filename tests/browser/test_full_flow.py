"""The full flow on the real platform (API + Celery worker + redis, tests/conftest.py `platform`): fill the form,
launch a tiny local search that the worker runs with `nasforge search`, watch its heatmap change, open the cell
graph, cancel. And the demo `make run` seeds."""
from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.browser.conftest import Api, admin_token, shot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _search_command() -> None:
    nasforge = Path(sys.executable).with_name("nasforge")
    if not (nasforge.exists() or shutil.which("nasforge")):
        pytest.skip("the `nasforge` command is not installed (pip install -e .)")


def test_form_launches_a_tiny_search_and_the_heatmap_moves(page, platform, artifacts_dir):
    _search_command()
    token = admin_token(platform["env"])
    sign_in(page, platform["url"], token, "#/new")
    page.wait_for_selector("#experiment-form input[name='name']")
    # A search small enough for a test: one down/up level, two-node cells, 32 px tiles, alpha every step.
    page.fill("input[name='name']", "ui full flow")
    page.fill("input[name='space.depth']", "1")
    page.fill("input[name='space.channels']", "4")
    for cell in ("normal", "down", "up"):
        page.fill(f"input[name='space.cells.{cell}.nodes']", "2")
    page.fill("input[name='data.tile_size']", "32")
    page.fill("input[name='data.num_tiles']", "16")
    page.fill("input[name='data.batch_size']", "4")
    # Long enough to still be running while the page is watched (the test cancels it): an idle machine finishes
    # three epochs of this tiny search in seconds.
    page.fill("input[name='search.epochs']", "200")
    page.locator("fieldset[data-path='search'] details.more > summary").click()
    page.fill("input[name='search.events_every_steps']", "1")
    page.fill("input[name='search.arch_lr']", "0.01")
    page.uncheck("input[name='baseline.random']")
    shot(page, artifacts_dir, "new-experiment-filled")
    page.get_by_role("button", name="Create and launch").click()
    page.wait_for_url("**/#/runs/*", timeout=30000)
    run_id = int(page.url.rsplit("/", 1)[1])
    api = Api(platform["url"], token)
    run = api("GET", f"/api/runs/{run_id}")
    assert run["config"]["space"]["depth"] == 1 and run["config"]["search"]["events_every_steps"] == 1
    assert run["baselines"] == []

    # The worker launches it; the first alpha reaches the page, then another, different one.
    # Waits for the first alpha, or for the run to fail (then the page's status line says why, and so does the test).
    page.wait_for_function("""() => { const d = document.getElementById('heatmaps-all');
        const badge = document.querySelector('#run-status .badge');  // the page may not have drawn it yet
        return (d && d.data) || (badge && badge.textContent === 'failed'); }""", timeout=150000)
    assert page.locator("#run-status .badge").inner_text() != "failed", page.locator("#run-status").inner_text()
    first = np.array(page.evaluate("document.getElementById('heatmaps-all').data.find(t => t.name === 'normal').z"))
    assert first.shape == (5, 8)  # two nodes: edges 0-2, 1-2, 0-3, 1-3, 2-3; the eight DARTS ops
    np.testing.assert_allclose(first.sum(axis=1), 1, atol=1e-6)
    page.wait_for_function("""(z0) => { const z = document.getElementById('heatmaps-all').data.find(t => t.name === 'normal').z;
        return z.some((row, i) => row.some((v, j) => Math.abs(v - z0[i][j]) > 1e-7)); }""", arg=first.tolist(), timeout=150000)
    assert page.locator("#run-status .badge").inner_text() == "running"
    shot(page, artifacts_dir, "full-flow-run")

    page.get_by_role("button", name="Cell graph").click()
    page.wait_for_function("() => { const d = document.getElementById('cell-normal'); return d && d.data; }", timeout=150000)
    ops = page.evaluate("document.getElementById('cell-normal').data.find(t => t.name === 'ops').text")
    assert len(ops) >= 2 and all(isinstance(o, str) and o for o in ops)
    shot(page, artifacts_dir, "full-flow-cell-graph")

    # Nothing more to learn from this run: cancel it from the page and let the CPU go.
    page.get_by_role("button", name="Cancel").click()
    page.wait_for_function("() => document.querySelector('#run-status .badge').textContent === 'cancelled'", timeout=30000)
    deadline = time.monotonic() + 60
    while api("GET", f"/api/runs/{run_id}")["status"] != "cancelled" and time.monotonic() < deadline:
        time.sleep(1)
    assert api("GET", f"/api/runs/{run_id}")["status"] == "cancelled"
    assert page.console_errors == []


def test_demo_seed_creates_and_launches_once(ui_stack, ui_api):
    import httpx

    from backend.demo import DEMO_SEARCH, seed_demo

    first = seed_demo(ui_stack["url"], ui_api.token)
    assert first["experiment"]["name"] == "demo: darts-helicopters"
    assert first["run"]["experiment_id"] == first["experiment"]["id"] and first["run"]["method"] == "darts"
    assert [b["method"] for b in first["baselines"]] == ["random"]
    stored = ui_api("GET", f"/api/experiments/{first['experiment']['id']}")
    # Alpha after every step: the heatmap moves from the first steps, not only after a whole epoch.
    assert stored["config"]["search"]["events_every_steps"] == DEMO_SEARCH["events_every_steps"] == 1
    again = seed_demo(ui_stack["url"], ui_api.token)
    assert again["run"] is None and again["experiment"]["id"] == first["experiment"]["id"]
    with pytest.raises(httpx.HTTPStatusError, match="401"):
        seed_demo(ui_stack["url"], "nf_1_not-a-token")
