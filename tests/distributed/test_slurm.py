"""A 2-task job on the single-node SLURM dev cluster runs a Horovod search end to end (srun --mpi=pmix, ranks
from SLURM), through the worker's real SLURM launcher. A multi-node allocation cannot exist here."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest
import yaml

from nas_core.config import LauncherConfig, parse_experiment
from _experiments import experiment

pytestmark = pytest.mark.slurm


def test_two_task_horovod_search_on_slurm(slurm_cluster, tmp_path):
    pytest.importorskip("horovod.torch", reason="Horovod is not built: make horovod (scripts/build-horovod.sh)")
    from worker.launchers._base import RunSpec
    from worker.launchers.slurm import ClusterProfile, SlurmLauncher

    cfg = experiment("horovod", method="darts")
    run_dir = tmp_path / "runs" / "41"
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg))
    launcher_cfg = LauncherConfig(kind="slurm", processes=2, slurm={"tasks_per_node": 2, "time": "00:10:00"})
    spec = RunSpec(run_id=41, run_dir=run_dir, config=parse_experiment(cfg), launcher=launcher_cfg)
    # One machine: OpenMPI's transports over loopback, one thread per rank on 2 cores.
    profile = ClusterProfile(environment={"OMPI_MCA_btl": "self,tcp", "OMPI_MCA_btl_tcp_if_include": "lo",
                                          "OMPI_MCA_oob_tcp_if_include": "lo", "OMP_NUM_THREADS": "1"})
    launcher = SlurmLauncher([str(Path(sys.executable).with_name("nasforge"))], env=slurm_cluster, profile=profile)
    script = launcher.render(spec)
    assert "srun --kill-on-bad-exit=1 --mpi=pmix" in script
    job = launcher.submit(spec)
    deadline, state = time.monotonic() + 400, None
    while time.monotonic() < deadline:
        state = launcher.state(job, spec)
        if state.state not in ("PENDING", "RUNNING"):
            break
        time.sleep(2)
    logs = "".join((run_dir / f).read_text() for f in ("stdout.log", "stderr.log") if (run_dir / f).exists())
    assert state is not None and state.state == "COMPLETED", f"{state}\n{logs[-4000:]}"
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1)), "rank 0 alone writes, in order"
    assert any(e["kind"] == "alpha" for e in events)
    assert events[-1]["kind"] == "status" and events[-1]["payload"]["state"] == "succeeded"
    # Both ranks took part: each left its heartbeat, and they agree on the last step.
    beats = [json.loads((run_dir / "ranks" / f"rank-{r}.json").read_text()) for r in (0, 1)]
    assert beats[0]["step"] == beats[1]["step"] > 0
    assert (run_dir / "genotype.json").exists()
