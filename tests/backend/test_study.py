"""Studies over seeds: the statistics (backend/stats.py) on known data, `repeats: N` launching N searches each with
its own-seed baseline (messages read back from the real Redis broker), and GET /api/experiments/{id}/study over
runs whose events came in through the ingest path, with the "predicts only background" flag of the headline."""
from __future__ import annotations

import pytest

from backend import crud, stats
from tests.backend.test_runs import _experiment, _tasks

GENOTYPE = {"cells": {"normal": {"nodes": [[["conv_3x3", 0], ["skip_connect", 1]]], "concat": [2]}}}


# ------------------------------------------------------------------------------------------------- statistics


def test_interval_of_a_clear_gap_excludes_zero_and_names_the_winner():
    searched, random = [0.62, 0.66, 0.64, 0.65], [0.41, 0.45, 0.43, 0.40]
    diff = stats.difference_interval(searched, random)
    assert diff["mean"] == pytest.approx(0.22)
    assert 0 < diff["low"] <= diff["mean"] <= diff["high"]
    assert stats.verdict(diff, 4, 4).startswith("the search beats random by 0.220 IoU")
    # Reversed arms: random is better, by the same amount.
    back = stats.difference_interval(random, searched)
    assert back["high"] < 0 and stats.verdict(back, 4, 4).startswith("random beats the search by 0.220 IoU")


def test_overlapping_arms_give_no_evidence():
    searched, random = [0.50, 0.62, 0.41, 0.58], [0.47, 0.60, 0.52, 0.45]
    diff = stats.difference_interval(searched, random)
    assert diff["low"] < 0 < diff["high"]
    assert stats.verdict(diff, 4, 4).startswith(stats.NO_EVIDENCE)


def test_bootstrap_is_reproducible_and_brackets_the_mean():
    values = [0.3, 0.5, 0.45, 0.8, 0.35]
    first, again = stats.mean_interval(values), stats.mean_interval(values)
    assert first == again  # fixed bootstrap seed: the page shows the same interval on every load
    assert first["mean"] == pytest.approx(0.48) and first["low"] < first["mean"] < first["high"]
    assert min(values) <= first["low"] and first["high"] <= max(values)


def test_one_seed_per_arm_is_too_few_to_judge():
    diff = stats.difference_interval([0.9], [0.1, 0.2])
    assert diff["low"] is None and diff["mean"] == pytest.approx(0.75)
    assert stats.mean_interval([0.9])["low"] is None
    assert stats.verdict(diff, 1, 2).startswith("too few seeds to judge")
    # Seeds enough, still running: the verdict waits instead of asking for more repeats.
    assert stats.verdict(diff, 1, 2, 3, 3).startswith("waiting for test IoUs: 1 of 3 searched and 2 of 3 random")


def test_a_proxy_must_beat_parameter_count_and_flops():
    ious = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    # `good` ranks exactly as training does; `size` follows the parameter count, which is noisier than good.
    params = [10, 30, 20, 40, 60, 50]
    results = [{"iou": iou, "params_count": p, "flops": 7 * p, "proxies": {"good": iou * 3, "size": p, "bad": -iou}}
               for iou, p in zip(ious, params)]
    rows = {r["name"]: r for r in stats.rank_correlations(results)}
    assert rows["good"]["spearman"] == pytest.approx(1.0) and rows["good"]["beats_size"] is True
    assert rows["size"]["spearman"] == pytest.approx(rows["params"]["spearman"]) and rows["size"]["beats_size"] is False
    assert rows["bad"]["beats_size"] is False
    assert rows["params"]["baseline"] and rows["flops"]["baseline"] and rows["flops"]["n"] == 6
    assert [r["name"] for r in stats.rank_correlations(results)][-2:] == ["params", "flops"]


# ------------------------------------------------------------------------------------------------- the API


def test_repeats_launch_a_search_and_its_own_seed_baseline_per_seed(client, tokens, redis_client):
    exp = _experiment(client, tokens.write, seed=5, repeats=2, search={"method": "darts"},
                      baseline={"random": True, "seeds": 3})
    r = client.post(f"/api/experiments/{exp}/runs", json={}, headers=tokens.write)
    assert r.status_code == 201, r.text
    body = r.json()
    searches, baselines = body["repeats"], body["baselines"]
    assert body["run"]["id"] == searches[0]["id"] and len(searches) == 2 and len(baselines) == 2
    seed = lambda run_id: client.get(f"/api/runs/{run_id}", headers=tokens.read).json()["config"]["seed"]
    assert [seed(s["id"]) for s in searches] == [5, 6]
    # One baseline per repeat (not baseline.seeds), with its search's seed, linked to it.
    assert [(b["baseline_of"], seed(b["id"]), b["method"]) for b in baselines] == [
        (searches[0]["id"], 5, "random"), (searches[1]["id"], 6, "random")]
    # All four are handed to the worker: the searches first, then the baselines that wait for them.
    assert _tasks(redis_client) == [("nasforge.launch_run", [i]) for i in
                                    (*[s["id"] for s in searches], *[b["id"] for b in baselines])]
    # A launch seed moves the whole study.
    again = client.post(f"/api/experiments/{exp}/runs", json={"seed": 20}, headers=tokens.write).json()
    assert [seed(s["id"]) for s in again["repeats"]] == [20, 21]
    # An experiment without repeats answers as before: no repeats list.
    single = _experiment(client, tokens.write, baseline={"random": False})
    assert client.post(f"/api/experiments/{single}/runs", json={}, headers=tokens.write).json()["repeats"] == []


def test_repeats_out_of_range_names_the_field(client, tokens):
    r = client.post("/api/experiments", json={"name": "e", "repeats": 0}, headers=tokens.write)
    assert r.status_code == 422 and "repeats" in r.text


def _evaluated(session, run_id: int, foreground: float, seq: int = 1) -> None:
    crud.ingest_events(session, run_id, [{"seq": seq, "kind": "evaluation", "payload": {
        "stage": "evaluate", "split": "test", "miou": 0.5 + foreground / 2, "iou": [0.97, foreground]}}], redis=None)


def test_study_endpoint_sets_searched_beside_random_per_seed(client, session, tokens):
    exp_id = _experiment(client, tokens.write, repeats=3, search={"method": "darts"}, baseline={"random": True})
    launched = client.post(f"/api/experiments/{exp_id}/runs", json={}, headers=tokens.write).json()
    searched, random = [0.61, 0.66, 0.64], [0.42, 0.47, 0.02]
    for run, iou in zip(launched["repeats"], searched):
        _evaluated(session, run["id"], iou)
    for i, (base, iou) in enumerate(zip(launched["baselines"], random)):
        # A baseline's trials as nas_core/discrete reports them, then its evaluate stage.
        crud.ingest_events(session, base["id"], [
            {"seq": 1 + t, "kind": "candidate", "payload": {"trial": t, "iou": 0.1 * (t + 1), "params_count": 100 + 10 * ((t + i) % 3),
                                                           "flops": 5000 - t, "proxies": {"synflow": t, "naswot": -t},
                                                           "status": "ok", "final": True}} for t in range(3)], redis=None)
        _evaluated(session, base["id"], iou, seq=4)

    study = client.get(f"/api/experiments/{exp_id}/study", headers=tokens.read)
    assert study.status_code == 200, study.text
    (group,) = study.json()["groups"]
    assert group["method"] == "darts"
    assert [p["iou"] for p in group["searched"]["points"]] == pytest.approx(searched)
    assert [p["seed"] for p in group["random"]["points"]] == [0, 1, 2]
    assert group["searched"]["mean"] == pytest.approx(sum(searched) / 3)
    assert group["searched"]["low"] <= group["searched"]["mean"] <= group["searched"]["high"]
    assert group["difference"]["low"] > 0 and group["verdict"].startswith("the search beats random")
    # The near-zero baseline is flagged, by the server's one threshold, here and on the run itself.
    assert [p["background_only"] for p in group["random"]["points"]] == [False, False, True]
    flagged = client.get(f"/api/runs/{launched['baselines'][2]['id']}", headers=tokens.read).json()["headline"]
    names = client.get("/api/schema/names").json()
    assert flagged["background_only"] and flagged["value"] < names["background_only_below"]
    # Proxies over the baselines' 9 trained candidates: synflow follows the IoU exactly, naswot inversely.
    proxies = {row["name"]: row for row in study.json()["proxies"]}
    assert study.json()["candidates"] == 9
    assert proxies["synflow"]["spearman"] == pytest.approx(1.0) and proxies["synflow"]["beats_size"] is True
    assert proxies["naswot"]["beats_size"] is False and proxies["flops"]["spearman"] == pytest.approx(-1.0)
    assert client.get("/api/experiments/999999/study", headers=tokens.read).status_code == 404
