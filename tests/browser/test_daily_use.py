"""Daily use in Chromium against the real API (ui_stack: no worker, events through the ingest endpoint): the tables
sort and filter on the server, every view's state is in the URL (a fresh page opened on it shows the same view,
back returns to the previous one), a read token sees disabled controls that name the missing scope, the header
follows a `#token=` sign-in at once, and the compare page's labels stay inside their panels.

One seeded set of experiments serves all the tests of this module (module fixture), to keep the browser time small.
"""
from __future__ import annotations

import time

import numpy as np
import pytest
from sqlmodel import Session, create_engine

from tests.browser.conftest import shot, sign_in
from tests.browser.test_figures import GENOTYPE, softmax
from tests.browser.test_pages import Feed

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def seeded(ui_api, ui_stack):
    """Two experiments: `daily-a` (darts, four runs with test IoUs 0.3/0.7/0.5/none, three epochs of alpha each, the
    last validation mIoU 0.4) and
    `daily-b` (gaea, one run); the second run of daily-a is running (set as the worker sets it)."""
    tag = f"daily{time.time_ns() % 10**6}"
    a = ui_api.experiment(f"{tag}-a")
    b = ui_api.experiment(f"{tag}-b", search={"method": "gaea", "epochs": 3})
    ious = [0.3, 0.7, 0.5, None]
    runs = []
    rng = np.random.default_rng(7)
    for i, iou in enumerate(ious):
        run_id = ui_api.launch(a["id"])["run"]["id"]
        feed = Feed(ui_api, run_id)
        for e in range(3):
            # Near-uniform alpha, as a search that has barely learned writes it: 0.125 +- 0.002.
            feed.epoch(e, {ct: rng.normal(size=(14, 8)) * 0.02 for ct in ("normal", "down")}, GENOTYPE, 0.2 + 0.1 * e)
        if iou is not None:
            feed.send("evaluation", {"stage": "evaluate", "split": "test", "iou": [0.9, iou], "params": 1000 * (i + 1)})
        runs.append(run_id)
    other = ui_api.launch(b["id"])["run"]["id"]
    Feed(ui_api, other).send("evaluation", {"stage": "evaluate", "split": "test", "iou": [0.9, 0.9]})
    from backend import crud

    engine = create_engine(f"sqlite:///{ui_stack['data_dir'] / 'nasforge.db'}")
    with Session(engine) as session:
        crud.set_run_status(session, runs[1], "running")
    engine.dispose()
    return {"tag": tag, "a": a["id"], "b": b["id"], "runs": runs, "ious": ious, "other": other}


def _rows(pg, selector: str) -> list[str]:
    return pg.eval_on_selector_all(selector, "trs => trs.map(t => t.dataset.run || t.dataset.id)")


def test_tables_sort_filter_and_the_url_round_trip(page, browser, ui_api, ui_stack, seeded, artifacts_dir):
    tag, runs = seeded["tag"], seeded["runs"]
    sign_in(page, ui_stack["url"], ui_api.token, f"#/experiments?q={tag}")
    page.wait_for_selector("table.list tbody tr")
    assert _rows(page, "table.list tbody tr") == [str(seeded["b"]), str(seeded["a"])]  # newest first
    # Sorting by best IoU ascending puts daily-a (0.7) before daily-b (0.9); the sort is in the URL.
    page.click("th[data-sort=iou] button")  # descending first
    page.wait_for_function("() => location.hash.includes('sort=-iou')")
    page.click("th[data-sort=iou] button")
    page.wait_for_function("() => location.hash.includes('sort=iou') && !location.hash.includes('sort=-iou')")
    page.wait_for_function(f"() => [...document.querySelectorAll('table.list tbody tr')].map(t => t.dataset.id).join() === '{seeded['a']},{seeded['b']}'")
    assert page.locator(f"tr[data-id='{seeded['a']}'] td.headline").inner_text().startswith("0.700")
    # A filter narrows on the server; back returns to the unfiltered, sorted list.
    page.select_option("select[name=method]", "gaea")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_function(f"() => [...document.querySelectorAll('table.list tbody tr')].map(t => t.dataset.id).join() === '{seeded['b']}'")
    assert "method=gaea" in page.evaluate("location.hash")
    page.go_back()
    page.wait_for_function("() => document.querySelectorAll('table.list tbody tr').length === 2")
    assert page.input_value("select[name=method]") == ""

    # The runs table: by headline IoU, best first (run 4 has no test IoU: its headline is the search's validation
    # mIoU, 0.4, named as such); status filter; all in the URL.
    page.evaluate("(r) => { location.hash = r; }", f"#/experiments/{seeded['a']}")
    page.wait_for_selector("#runs tr[data-run]")
    page.click("#runs th[data-sort=iou] button")
    expected = [str(runs[i]) for i in (1, 2, 3, 0)]
    page.wait_for_function(f"() => [...document.querySelectorAll('#runs tr[data-run]')].map(t => t.dataset.run).join() === '{','.join(expected)}'")
    assert page.locator(f"#runs tr[data-run='{runs[1]}'] td:nth-child(11)").inner_text() == "2.0 k"  # params
    page.select_option("#run-filters select[name=status]", "running")
    page.locator("#run-filters button[type=submit]").click()
    page.wait_for_function(f"() => [...document.querySelectorAll('#runs tr[data-run]')].map(t => t.dataset.run).join() === '{runs[1]}'")
    shared = page.url
    assert "status=running" in shared and "sort=-iou" in shared
    shot(page, artifacts_dir, "runs-table-sorted")
    page.go_back()  # the filter undone, the sort kept
    page.wait_for_function("() => document.querySelectorAll('#runs tr[data-run]').length === 4")
    assert page.input_value("#run-filters select[name=status]") == ""

    # The run page's view: tab, epoch and colour scale in the URL, then the same view in a fresh page.
    page.evaluate("(r) => { location.hash = r; }", f"#/runs/{runs[0]}")
    page.wait_for_function("() => document.getElementById('heatmaps-all') && document.getElementById('heatmaps-all').data")
    # Absolute 0..1 by default: a near-uniform alpha looks uniform, as it is.
    assert page.evaluate("[document.getElementById('heatmaps-all').data.find(t => t.name === 'normal').zmin, document.getElementById('heatmaps-all').data.find(t => t.name === 'normal').zmax]") == [0, 1]
    assert "absolute" in page.locator("#colour-scale option:checked").inner_text()
    page.locator("#epoch-slider").fill("1")
    page.select_option("#colour-scale", "relative")
    page.wait_for_function("() => document.getElementById('heatmaps-all').data.find(t => t.name === 'normal').zmin > 0.1")
    page.get_by_role("button", name="Cell graph").click()
    page.wait_for_function("() => location.hash.includes('tab=cell')")
    url = page.url
    assert "epoch=1" in url and "scale=relative" in url
    page.go_back()  # back to the alpha tab, the relative scale kept
    page.wait_for_function("() => { const p = document.querySelector('[data-panel=alpha]'); return p && !p.hidden; }")
    fresh = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        other = fresh.new_page()
        errors = []
        other.on("pageerror", lambda e: errors.append(str(e)))
        sign_in(other, ui_stack["url"], ui_api.token)
        other.goto(url)
        other.wait_for_function("() => document.querySelector('.tabs button.active') && "
                                "document.querySelector('.tabs button.active').dataset.tab === 'cell'")
        other.get_by_role("button", name="Alpha").click()
        other.wait_for_function("() => document.getElementById('heatmaps-all') && document.getElementById('heatmaps-all').data")
        assert other.input_value("#colour-scale") == "relative"
        assert other.locator("#frame-label").inner_text().startswith("epoch 1")
        assert not other.is_checked("#follow-live")
        assert other.evaluate("document.getElementById('heatmaps-all').data.find(t => t.name === 'normal').zmin") > 0.1
        # The shared runs-table URL opens the same filtered, sorted table.
        other.goto(shared)
        other.wait_for_function(f"() => [...document.querySelectorAll('#runs tr[data-run]')].map(t => t.dataset.run).join() === '{runs[1]}'")
        assert other.input_value("#run-filters select[name=status]") == "running"
        assert errors == []
    finally:
        fresh.close()
    assert page.console_errors == []


def test_read_token_sees_disabled_controls_and_the_header_follows_a_token_switch(page, ui_api, ui_stack, seeded):
    reader = ui_api("POST", "/api/users", json={"name": f"reader{time.time_ns() % 10**8}", "scopes": ["read"]})
    sign_in(page, ui_stack["url"], reader["token"]["token"], f"#/experiments/{seeded['a']}")
    page.wait_for_function("() => document.getElementById('whoami').textContent.includes('(read)')")
    launch = page.get_by_role("button", name="Launch run")
    page.wait_for_function("() => [...document.querySelectorAll('button')].some(b => b.textContent === 'Launch run' && b.disabled)")
    assert "needs the write scope" in launch.get_attribute("title")
    assert page.get_by_role("button", name="Clone").is_disabled()
    page.evaluate("(r) => { location.hash = r; }", f"#/runs/{seeded['runs'][1]}")
    page.wait_for_selector("#run-status .badge")
    cancel = page.get_by_role("button", name="Cancel")
    page.wait_for_function("() => [...document.querySelectorAll('button')].some(b => b.textContent === 'Cancel' && b.disabled)")
    assert "write scope" in cancel.get_attribute("title")
    # A second #token= link in the same tab: the header shows the new identity at once, and the controls follow.
    page.evaluate("(t) => { location.hash = '#token=' + t; }", ui_api.token)
    page.wait_for_function("() => document.getElementById('whoami').textContent.includes('admin')")
    page.evaluate("(r) => { location.hash = r; }", f"#/experiments/{seeded['a']}")
    page.wait_for_selector("#runs tr[data-run]")
    assert page.get_by_role("button", name="Launch run").is_enabled()
    assert page.console_errors == []


def test_compare_labels_fit_and_the_baseline_reason_follows_its_search(page, ui_api, ui_stack, seeded, artifacts_dir):
    runs = seeded["runs"]
    sign_in(page, ui_stack["url"], ui_api.token, f"#/compare?runs={','.join(map(str, runs))}&epoch=1")
    page.wait_for_function("() => document.querySelector(\"[data-fig='metrics'] .legend\")")
    page.wait_for_selector("#compare-cells .col [data-fig='cell-normal'] .annotation-text", state="attached")
    assert page.input_value("#compare-epoch") == "1"
    z = page.evaluate("document.querySelector(\"#compare-alpha [data-fig='alpha']\").data.find(t => t.name === 'normal')")
    assert (z["zmin"], z["zmax"]) == (0, 1)
    shot(page, artifacts_dir, "compare-four")
    # Every label of the metric bars, and every run's heading, inside its own panel.
    outside = page.evaluate("""() => {
      const out = [];
      const inside = (el, box) => { const r = el.getBoundingClientRect();
        return r.width === 0 || (r.left >= box.left - 1 && r.right <= box.right + 1 && r.top >= box.top - 1 && r.bottom <= box.bottom + 1); };
      const fig = document.querySelector("[data-fig='metrics']"); const box = fig.getBoundingClientRect();
      for (const t of fig.querySelectorAll('svg text')) if (!inside(t, box)) out.push(t.textContent);
      for (const h of document.querySelectorAll('.run-head')) for (const t of h.querySelectorAll('h3, .muted'))
        if (!inside(t, h.getBoundingClientRect())) out.push(t.textContent);
      return out; }""")
    assert outside == []
    # Cell-graph op labels clear of the node circles (their numbers stay readable).
    overlaps = page.evaluate("""() => {
      const out = [];
      for (const fig of document.querySelectorAll("#compare-cells [data-fig^='cell-']")) {
        const nodes = [...fig.querySelectorAll('.scatterlayer .trace:first-child .point')].map(p => p.getBoundingClientRect());
        for (const a of fig.querySelectorAll('.annotation-text')) {
          const r = a.getBoundingClientRect(); if (!r.width) continue;
          for (const n of nodes) { const cx = n.left + n.width / 2, cy = n.top + n.height / 2, rad = n.width / 2 - 2;
            const dx = Math.max(r.left - cx, 0, cx - r.right), dy = Math.max(r.top - cy, 0, cy - r.bottom);
            if (dx * dx + dy * dy < rad * rad) out.push(a.textContent); } }
      }
      return out; }""")
    assert overlaps == []

    # A queued baseline's reason names its search's status now, not the status when the worker last looked.
    exp = ui_api.experiment(f"{seeded['tag']}-base", baseline={"random": True, "seeds": 1})
    launched = ui_api.launch(exp["id"])
    search, base = launched["run"]["id"], launched["baselines"][0]["id"]
    page.evaluate("(r) => { location.hash = r; }", f"#/runs/{base}")
    status = "(s) => { const e = document.getElementById('run-status'); return e && e.textContent.includes(s); }"
    page.wait_for_function(status, arg=f"search run {search} (queued)")
    from backend import crud

    engine = create_engine(f"sqlite:///{ui_stack['data_dir'] / 'nasforge.db'}")
    with Session(engine) as session:
        crud.set_run_status(session, search, "running")
    engine.dispose()
    page.wait_for_function(status, arg=f"search run {search} (running)", timeout=15000)
    assert page.console_errors == []
