"""Where to search first, on the real platform (API + Celery worker running `nasforge search` and `nasforge
sensitivity`): a search launch with a hand-designed baseline (baseline.networks) gives a baseline run; once it
has succeeded its page's button measures its blocks, the U diagram shows every block with its rank (the first
block first), its event is stored once, and a click opens the form holding a partial search of that block,
which the API accepts. Tiny: a plain U-Net of width 4 and depth 1, 32 px tiles, one retrain epoch."""
from __future__ import annotations

import time

import pytest

from tests.browser.conftest import Api, admin_token, shot, sign_in
from tests.conftest import TINY_SEARCH
from tests.browser.test_full_flow import _search_command

pytestmark = [pytest.mark.browser, pytest.mark.slow]
NETWORK = {"name": "plain-unet", "channels": 4, "depth": 1}


def _succeeded_baseline(api: Api) -> dict:
    exp = api("POST", "/api/experiments", json={
        **TINY_SEARCH, "name": "where to search first", "data": {"tile_size": 32, "num_tiles": 32, "batch_size": 4},
        "baseline": {"random": False, "networks": [NETWORK]}})
    launched = api("POST", f"/api/experiments/{exp['id']}/runs", json={})
    [baseline] = launched["baselines"]
    deadline = time.monotonic() + 240
    while (run := api("GET", f"/api/runs/{baseline['id']}"))["status"] != "succeeded":
        assert run["status"] not in ("failed", "cancelled"), run["status_reason"]
        assert time.monotonic() < deadline, f"baseline run {run['id']} still {run['status']}"
        time.sleep(1)
    return run


def test_button_ranks_the_blocks_and_a_block_opens_its_partial_search(page, platform, artifacts_dir):
    _search_command()
    token = admin_token(platform["env"])
    api = Api(platform["url"], token)
    run = _succeeded_baseline(api)
    sign_in(page, platform["url"], token, f"#/runs/{run['id']}")
    page.get_by_role("button", name="Where to search first").wait_for()
    assert f"baseline · {run['network']['label']} ·" in page.locator("h1").inner_text()
    # The warning before the measure says what the run's own headline says.
    assert page.locator("#sensitivity-background-only").is_visible() == bool(run["headline"]["background_only"])
    page.get_by_role("button", name="Where to search first").click()
    page.wait_for_function("() => ['done', 'failed'].includes(document.getElementById('sensitivity').dataset.state)",
                           timeout=180000)
    assert page.locator("#sensitivity").get_attribute("data-state") == "done", page.locator("#sensitivity").inner_text()
    shot(page, artifacts_dir, "sensitivity-diagram")

    result = api("GET", f"/api/runs/{run['id']}/sensitivity")["result"]
    blocks = page.locator("#block-diagram button.block")
    assert blocks.count() == 3  # stem, down.0, up.0 (the head is drawn but not ranked)
    shown = [(blocks.nth(i).get_attribute("data-block"), int(blocks.nth(i).get_attribute("data-rank")))
             for i in range(blocks.count())]
    assert shown == [(b["name"], b["rank"]) for b in sorted(result["blocks"], key=lambda b: b["rank"])]
    assert shown[0] == (result["first"], 1) and "first" in blocks.first.get_attribute("class")
    assert "gain" in blocks.first.get_attribute("title") and "importance" in blocks.first.get_attribute("title")
    events = api("GET", f"/api/runs/{run['id']}/events", params={"kind": "sensitivity"})
    assert len(events if isinstance(events, list) else events["items"]) == 1

    blocks.first.click()
    page.wait_for_selector("#partial-of")
    assert page.input_value("input[name='name']") == f"partial {result['first']} of run {run['id']}"
    role = next(b["role"] for b in result["blocks"] if b["name"] == result["first"])
    # The cell's ops are the schema's, ticked in the form (not an empty-looking set the server fills in).
    ticked = page.eval_on_selector_all(f"input[type=checkbox][name='space.cells.{role}.ops']:checked",
                                       "els => els.map(e => e.value)")
    assert ticked and "none" in ticked, ticked
    page.get_by_role("button", name="Create only").click()
    page.wait_for_url("**/#/experiments/*", timeout=30000)
    exp = api("GET", f"/api/experiments/{int(page.url.rsplit('/', 1)[1])}")
    space = exp["config"]["space"]
    assert (space["macro"], space["channels"], space["depth"]) == ("plain-unet", 4, 1)
    assert space["search_blocks"] == [result["first"]] and space["init_from"] == result["checkpoint"]
    role = next(b["role"] for b in result["blocks"] if b["name"] == result["first"])
    assert list(space["cells"]) == [role] and space["freeze"] is False
    assert exp["config"]["search"]["method"] == "darts" and exp["config"]["data"]["num_tiles"] == 32
    # Measured like any search: against random search (the schema's default) and the network it starts from.
    assert exp["config"]["baseline"]["random"] is True
    assert exp["config"]["baseline"]["networks"] == [result["network_config"]]
    assert page.console_errors == []
