"""The real services every later test relies on: Redis, SLURM, MPI, PostgreSQL."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
import uuid

import pytest


def test_redis_round_trip(redis_url):
    import redis

    client = redis.Redis.from_url(redis_url)
    key, value = f"nasforge-test-{uuid.uuid4()}", uuid.uuid4().hex
    client.set(key, value)
    assert client.get(key).decode() == value
    # A stream, as the event fan-out uses: what goes in comes out in order.
    stream = f"{key}-stream"
    ids = [client.xadd(stream, {"seq": i}) for i in range(3)]
    got = client.xrange(stream)
    assert [entry_id for entry_id, _ in got] == ids
    assert [int(fields[b"seq"]) for _, fields in got] == [0, 1, 2]


def test_postgres_accepts_sql(postgres_url):
    import sqlalchemy as sa

    engine = sa.create_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE probe (id serial primary key, v text)"))
        conn.execute(sa.text("INSERT INTO probe (v) VALUES ('a'), ('b')"))
        assert conn.execute(sa.text("SELECT count(*), string_agg(v, ',' ORDER BY v) FROM probe")).one() == (2, "a,b")
        version = conn.execute(sa.text("SHOW server_version")).scalar()
    engine.dispose()
    assert version.split(".")[0].isdigit()


@pytest.mark.slurm
def test_sbatch_job_runs_to_completion(slurm_cluster, tmp_path):
    marker = uuid.uuid4().hex
    script = tmp_path / "job.sh"
    script.write_text(f"#!/bin/bash\necho {marker} $SLURM_JOB_ID $SLURM_NTASKS\n")
    out = subprocess.run(
        ["sbatch", "--parsable", "--ntasks", "1", "--job-name", "nasforge-test", "--output", str(tmp_path / "job-%j.out"), str(script)],
        env=slurm_cluster, capture_output=True, text=True, timeout=30,
    )
    assert out.returncode == 0, out.stderr
    job_id = out.stdout.strip().split(";")[0]
    state = ""
    for _ in range(120):
        show = subprocess.run(["scontrol", "show", "job", job_id], env=slurm_cluster, capture_output=True, text=True)
        state = next((w.split("=", 1)[1] for w in show.stdout.split() if w.startswith("JobState=")), "")
        if state in ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL"):
            break
        time.sleep(0.5)
    assert state == "COMPLETED", show.stdout
    assert (tmp_path / f"job-{job_id}.out").read_text().split() == [marker, job_id, "1"]


@pytest.mark.mpi
def test_mpirun_two_ranks_with_mpi4py(tmp_path):
    from nas_core.mpi import mpirun_command

    prog = tmp_path / "ranks.py"
    prog.write_text(textwrap.dedent("""
        from mpi4py import MPI
        comm = MPI.COMM_WORLD
        total = comm.allreduce(comm.rank + 1)
        if comm.rank == 1:
            comm.send({"from": 1, "total": total}, dest=0)
        if comm.rank == 0:
            msg = comm.recv(source=1)
            print(comm.size, total, msg["from"], msg["total"])
    """))
    out = subprocess.run(mpirun_command(2, [sys.executable, str(prog)]), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["2", "3", "1", "3"]
