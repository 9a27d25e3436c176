"""The fault drill (bench/faults.py) at suite size: kill -9 the worker, restart Redis, the API and PostgreSQL,
kill -9 the search, all while a real search runs on PostgreSQL and an SSE client follows it."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bench.faults import NASFORGE, drill
from deploy.local import PG_BIN

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def test_every_fault_recovers_and_no_event_is_lost_or_doubled(tmp_path):
    if not (PG_BIN / "initdb").exists() or shutil.which("redis-server") is None or not Path(NASFORGE).exists():
        pytest.skip("needs PostgreSQL, redis-server and the nasforge command (scripts/install-system.sh, pip install -e .)")
    # Epochs enough that the tiny search still runs at the last fault on a quiet machine (100 ended before it once).
    result = drill(tmp_path / "var", epochs=160, log=lambda line: None)
    assert result["status"] == "succeeded" and result["attempt"] == 2, result
    assert result["log_is_1_to_n"] and result["events_in_log"] > 100
    assert (result["lost"], result["doubled"], result["extra_stored"]) == (0, 0, 0), "the database holds exactly the log"
    assert (result["sse_lost"], result["sse_doubled"]) == (0, 0) and result["sse_in_order"], "SSE: each event once"
    assert result["sse_ended"] and result["sse_reconnects"] >= 2, "the client was cut (API, search) and came back"
    assert set(result["recovery_s"]) == {"kill -9 worker", "restart Redis", "restart API", "restart PostgreSQL",
                                         "kill -9 search"}
    assert result["restarts"]["worker"] == 1, "supervisord restarted the killed worker by itself"
