"""'Retrain this cell' on the run page: it launches a retrain run of this run's genotype with the epochs and seed
given, and the retrain appears beside its parent (the parent's page, the experiment's run table)."""
from __future__ import annotations

import pytest

from tests.browser.conftest import sign_in
from tests.browser.test_pages import GENOTYPE, Feed, queued_run

pytestmark = pytest.mark.browser


def test_retrain_this_cell_launches_a_retrain_beside_its_parent(page, ui_api, ui_stack):
    parent = queued_run(ui_api, "retrain-ui")
    sign_in(page, ui_stack["url"], ui_api.token, f"#/runs/{parent}")
    page.wait_for_selector("#run-status .badge")
    assert page.locator("#retrain-form").is_hidden()  # no cell yet: nothing to retrain
    Feed(ui_api, parent).send("genotype", {"stage": "search", "epoch": 0, "genotype": GENOTYPE})
    page.wait_for_selector("#retrain-form", state="visible", timeout=20000)
    page.fill("input[name=epochs]", "2")
    page.fill("input[name=seed]", "5")
    page.get_by_role("button", name="Retrain this cell").click()
    page.wait_for_function("(p) => /^#\\/runs\\/\\d+$/.test(location.hash) && location.hash !== `#/runs/${p}`"
                           " && document.querySelector('h1') && document.querySelector('h1').textContent.includes('retrain of')",
                           arg=parent, timeout=20000)
    child = int(page.evaluate("location.hash").rsplit("/", 1)[1])
    run = ui_api("GET", f"/api/runs/{child}")
    assert (run["kind"], run["parent_run_id"]) == ("retrain", parent)
    assert run["config"]["retrain"]["epochs"] == 2 and run["config"]["seed"] == 5
    assert page.locator(f"h1 a[href='#/runs/{parent}']").count() == 1

    # The parent's page lists it; the experiment's run table names the parent in the retrain's row.
    page.evaluate("(r) => { location.hash = r; }", f"#/runs/{parent}")
    page.wait_for_selector(f"#run-retrains a[href='#/runs/{child}']")
    page.evaluate("(r) => { location.hash = r; }", f"#/experiments/{run['experiment_id']}")
    row = page.locator(f"table.list tr[data-run='{child}'] td.kind")
    row.wait_for()
    assert row.inner_text() == f"retrain of run {parent}"
    assert page.console_errors == []
