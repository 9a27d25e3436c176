"""The runs and experiments tables on SQLite and PostgreSQL: headline IoU, the baselines' IoU, budget and parameters
per row, server-side sort (nulls last either way), filters and paging; the reads stay a fixed number of queries
however many rows there are (backend/summary.py batches them)."""
from __future__ import annotations

import pytest
from sqlalchemy import event

from backend import crud
from backend.headline import headline, headlines


def _exp(client, headers, name: str, **cfg) -> int:
    r = client.post("/api/experiments", json={"name": name, **cfg}, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def _evaluate(session, run_id: int, iou: float, params: int, seq: int = 1) -> None:
    crud.ingest_events(session, run_id, [{"seq": seq, "kind": "evaluation", "payload": {
        "stage": "evaluate", "split": "test", "iou": [0.9, iou], "params": params}}], redis=None)


def _rows(client, headers, **params) -> dict:
    r = client.get("/api/runs", params=params, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def test_runs_table_rows_sort_filter_and_page(client, session, tokens):
    exp_id = _exp(client, tokens.write, "table-a", baseline={"random": True, "seeds": 2}, search={"epochs": 7})
    exp = crud.get_experiment(session, exp_id)
    search, bases = crud.launch(session, exp)
    _evaluate(session, search.id, 0.6, 1234)
    # One baseline with a best candidate, one still without an IoU: the mean is over those that have one.
    crud.ingest_events(session, bases[0].id, [
        {"seq": 1, "kind": "candidate", "payload": {"trial": 0, "iou": 0.3, "final": True, "params_count": 50}},
        {"seq": 2, "kind": "candidate", "payload": {"trial": 1, "iou": 0.45, "final": True, "params_count": 70}},
        {"seq": 3, "kind": "candidate", "payload": {"trial": 2, "iou": 0.9, "final": False, "params_count": 90}}], redis=None)
    plain, _ = crud.launch(session, exp, baselines=False)
    crud.ingest_events(session, plain.id, [
        {"seq": 1, "kind": "metric", "payload": {"stage": "search", "epoch": 0, "val_iou": 0.2}},
        {"seq": 2, "kind": "metric", "payload": {"stage": "search", "epoch": 1, "val_iou": 0.35}},
        {"seq": 3, "kind": "metric", "payload": {"stage": "retrain", "epoch": 0, "train_loss": 0.5}}], redis=None)
    crud.set_run_status(session, plain.id, "running")
    empty, _ = crud.launch(session, exp, baselines=False)

    page = _rows(client, tokens.read, experiment_id=exp_id, sort="-iou")
    by_id = {r["id"]: r for r in page["items"]}
    assert [r["id"] for r in page["items"]][:3] == [search.id, bases[0].id, plain.id]
    assert {r["id"] for r in page["items"][3:]} == {bases[1].id, empty.id}  # no IoU: last, whichever the direction
    assert page["total"] == 5 and page["sort"] == "-iou"
    row = by_id[search.id]
    assert row["headline"]["value"] == pytest.approx(0.6) and row["headline"]["source"] == "evaluate"
    assert row["baseline_iou"] == pytest.approx(0.45) and row["baseline_runs"] == 2
    assert row["params"] == 1234 and row["budget"]["epochs"] == 7
    assert by_id[bases[0].id]["params"] == 70  # the best final candidate's, not the non-final one's
    assert by_id[plain.id]["headline"]["label"] == "validation mIoU during search"
    assert by_id[plain.id]["budget"]["compute_s"] is not None and by_id[empty.id]["budget"]["compute_s"] is None
    ascending = [r["id"] for r in _rows(client, tokens.read, experiment_id=exp_id, sort="iou")["items"]]
    assert ascending[:3] == [plain.id, bases[0].id, search.id]
    # Paging a derived sort slices the sorted whole.
    second = _rows(client, tokens.read, experiment_id=exp_id, sort="-iou", limit=2, offset=2)
    assert [r["id"] for r in second["items"]] == [plain.id, *[r["id"] for r in page["items"][3:4]]]
    assert [r["id"] for r in _rows(client, tokens.read, experiment_id=exp_id, sort="-status")["items"]][0] == plain.id
    # Filters: status, kind, owner by name, text (experiment name or run id).
    assert [r["id"] for r in _rows(client, tokens.read, status="running")["items"]] == [plain.id]
    assert _rows(client, tokens.read, owner="alice")["total"] == 5
    assert _rows(client, tokens.read, owner="bob")["total"] == 0
    assert _rows(client, tokens.read, q="table-a")["total"] == 5
    assert [r["id"] for r in _rows(client, tokens.read, q=str(empty.id))["items"]] == [empty.id]
    r = client.get("/api/runs", params={"sort": "-colour"}, headers=tokens.read)
    assert r.status_code == 422 and "sort" in r.text
    # The single-run rule and the batched one agree.
    assert headlines(session, [search.id, plain.id, empty.id]) == {i: headline(session, crud.get_run(session, i))
                                                                   for i in (search.id, plain.id, empty.id)}


def test_experiments_table_best_iou_filters_and_sort(client, session, tokens):
    a = _exp(client, tokens.write, "exp-best-a", search={"method": "darts"}, baseline={"random": True, "seeds": 1})
    b = _exp(client, tokens.other_writer, "exp-best-b", search={"method": "gaea"}, baseline={"random": False})
    _exp(client, tokens.write, "exp-best-c", search={"method": "random", "trials": 3, "trial_epochs": 2})
    run_a, bases_a = crud.launch(session, crud.get_experiment(session, a))
    _evaluate(session, run_a.id, 0.5, 10)
    _evaluate(session, bases_a[0].id, 0.7, 10)  # a baseline never counts as the experiment's best
    run_b, _ = crud.launch(session, crud.get_experiment(session, b))
    _evaluate(session, run_b.id, 0.8, 10)
    crud.set_run_status(session, run_b.id, "running")

    def names(**params):
        r = client.get("/api/experiments", params={"q": "exp-best", **params}, headers=tokens.read)
        assert r.status_code == 200, r.text
        return [e["name"] for e in r.json()["items"]], r.json()

    order, body = names(sort="-iou")
    assert order == ["exp-best-b", "exp-best-a", "exp-best-c"]
    row_a = next(e for e in body["items"] if e["name"] == "exp-best-a")
    assert row_a["best"]["value"] == pytest.approx(0.5) and row_a["best_run_id"] == run_a.id
    assert row_a["baseline_iou"] == pytest.approx(0.7)
    assert next(e for e in body["items"] if e["name"] == "exp-best-c")["epochs"] == 6
    assert names(sort="name")[0] == ["exp-best-a", "exp-best-b", "exp-best-c"]
    assert names(method="gaea")[0] == ["exp-best-b"]
    assert names(owner="alice", sort="name")[0] == ["exp-best-a", "exp-best-c"]
    assert names(status="running")[0] == ["exp-best-b"]
    assert names(limit=1, offset=1, sort="-iou")[0] == ["exp-best-a"]


def test_table_reads_are_batched(client, session, tokens):
    """The number of statements a page costs does not grow with its rows (it was ~3 per row)."""
    exp = crud.get_experiment(session, _exp(client, tokens.write, "batched", baseline={"random": False}))
    runs = [crud.launch(session, exp)[0] for _ in range(30)]
    for i, run in enumerate(runs):
        _evaluate(session, run.id, i / 30, 100 + i)
    engine = session.get_bind()
    counted = []
    listener = lambda conn, cursor, statement, *a: counted.append(statement)  # noqa: E731

    def statements(limit: int) -> int:
        counted.clear()
        event.listen(engine, "before_cursor_execute", listener)
        try:
            assert len(_rows(client, tokens.read, experiment_id=exp.id, limit=limit)["items"]) == limit
        finally:
            event.remove(engine, "before_cursor_execute", listener)
        return len(counted)

    statements(1)  # the token's last_used_at is written at most once a minute: not part of a page's cost
    assert statements(30) == statements(3) <= 8
