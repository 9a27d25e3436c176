"""`nas_core.rundir.write_atomic`: a writer SIGKILLed at any moment leaves the old file or the new one, and a
reader running beside it never sees half a JSON document."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from nas_core.rundir import read_json, write_json

# Writes ever larger documents, each naming its own length, as fast as it can.
_WRITER = """
import sys
from nas_core.rundir import write_json
path, n = sys.argv[1], 0
while True:
    n += 1
    write_json(path, {"n": n, "fill": "x" * (1000 * (n % 200)), "len": 1000 * (n % 200)})
"""


def test_sigkill_at_any_point_never_leaves_half_a_document(tmp_path):
    path = tmp_path / "state.json"
    write_json(path, {"n": 0, "fill": "", "len": 0})
    seen, kills = set(), 0
    for i in range(12):
        proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(path)])
        started, deadline = None, time.monotonic() + 30
        while time.monotonic() < deadline:
            doc = json.loads(path.read_text())  # a torn file would raise here
            assert len(doc["fill"]) == doc["len"]
            if doc["n"] not in seen and started is None and doc["n"] > 0:
                started = time.monotonic()  # this writer is writing: kill it at a varied point of its cycle
            seen.add(doc["n"])
            if started is not None and time.monotonic() - started > 0.013 * i:
                break
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        kills += 1
        doc = read_json(path)
        assert len(doc["fill"]) == doc["len"], "a SIGKILLed writer left a torn document"
    assert kills == 12 and len(seen) > 24, "the writers hardly wrote: the test checked nothing"
    # Temp files of killed writers may stay behind, but never under the real name: only hidden names.
    assert all(p.name == "state.json" or p.name.startswith(".state.json.") for p in tmp_path.iterdir())


def test_a_failing_writer_keeps_the_old_file_and_its_temp_file_is_gone(tmp_path):
    path = tmp_path / "genotype.json"
    write_json(path, {"old": True})
    try:
        write_json(path, {"bad": float("nan")})
    except ValueError:
        pass
    else:
        raise AssertionError("NaN must be refused: the event format and the API forbid it")
    assert read_json(path) == {"old": True}
    assert [p.name for p in tmp_path.iterdir()] == ["genotype.json"]
