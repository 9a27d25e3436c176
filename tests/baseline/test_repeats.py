"""A study over seeds through the real worker: `repeats: 2` queues two searches (seeds seed and seed+1) each with one
random baseline of its own seed; the worker starts both searches as real `nasforge search` processes with those
seeds, holds each baseline for its own search, and a cancelled search cancels only its own baseline."""
from __future__ import annotations

import json
import time
from pathlib import Path

from backend import crud
from backend.core.db import session_scope
from nas_core.config import ExperimentConfig
from nas_core.rundir import RunDir, read_config
from tests.baseline.conftest import tiny_experiment
from worker import control


def _run(run_id: int):
    with session_scope() as s:
        return crud.get_run(s, run_id)


def _search_started(run_dir: str) -> bool:
    log = Path(run_dir) / "events.jsonl"
    return log.exists() and any(json.loads(line)["payload"].get("stage") == "search"
                                for line in log.read_text().splitlines() if line.strip())


def test_repeats_start_one_real_search_per_seed_each_holding_its_own_baseline(baseline_home):
    cfg = {**tiny_experiment(), "seed": 3, "repeats": 2}
    with session_scope() as s:
        exp = crud.create_experiment(s, ExperimentConfig.model_validate(cfg), owner_id=None)
        pairs = [(run.id, [b.id for b in bases]) for run, bases in crud.launch_repeats(s, exp)]
    assert [len(bases) for _, bases in pairs] == [1, 1]  # one baseline per repeat, not baseline.seeds (3)

    for search, (base,) in pairs:
        assert control.launch(search) == "submitted"
        assert control.launch(base) == "queued"
        assert f"waiting for search run {search}" in _run(base).status_reason
    for (search, (base,)), seed in zip(pairs, (3, 4)):
        # The config the search process reads from its run directory carries its seed; its baseline has the same.
        data, _ = read_config(RunDir(_run(search).run_dir).config)
        assert data["seed"] == seed and _run(base).config["seed"] == seed
        assert _run(base).baseline_of == search

    deadline = time.monotonic() + 120
    while not all(_search_started(_run(s).run_dir) for s, _ in pairs):
        assert time.monotonic() < deadline, "the searches never reached their search stage"
        time.sleep(0.5)

    # Cancelling the first search cancels its own baseline; the second's keeps waiting for its search.
    (first, (first_base,)), (second, (second_base,)) = pairs
    assert control.cancel(first) == "cancelled"
    assert control.launch(first_base) == "cancelled"
    assert f"search run {first} cancelled" in _run(first_base).status_reason
    assert control.launch(second_base) == "queued"
    assert control.cancel(second) == "cancelled"
