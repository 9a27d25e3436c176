"""Data-parallel search across two nodes against one process (issue 20), on the two-node dev cluster of this machine.

Starts `deploy/slurm/dev-cluster.sh start --nodes 2` (root: network namespaces) in a folder of its own, then for each
engine runs the same search as `bench distributed` three ways, one after another: 1 process; 2 ranks on one node
(loopback); 2 nodes x 1 task through the worker's SLURM launcher (sbatch, srun; Gloo or MPI over the nodes' veth
pairs and bridge). Step time is from the run's own progress events (the first step's warm-up, validation and start-up
left out; `tiles` sets how many steps there are: 160 tiles, about 10 steps of global batch 8); bytes are
what each rank all-reduced per step. The two "nodes" share this machine's cores, so the ratio shows what the network
path adds, not what a second machine would gain.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from bench.distributed import _port, one_and_two, timing, unavailable

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "deploy" / "slurm" / "dev-cluster.sh"
NET = "10.77.8"


def _two_nodes(run_dir: Path, cfg: dict, cluster_env: dict) -> dict:
    from nas_core.config import LauncherConfig, parse_experiment
    from worker.launchers._base import RunSpec
    from worker.launchers.slurm import ClusterProfile, SlurmLauncher

    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg))
    launcher_cfg = LauncherConfig(kind="slurm", processes=2, slurm={"nodes": 2, "tasks_per_node": 1, "time": "01:00:00"})
    spec = RunSpec(run_id=1, run_dir=run_dir, config=parse_experiment(cfg), launcher=launcher_cfg)
    profile = ClusterProfile(environment={"OMPI_MCA_btl": "self,tcp", "OMPI_MCA_btl_tcp_if_include": "eth0",
                                          "OMPI_MCA_oob_tcp_if_include": "eth0", "OMP_NUM_THREADS": "1"})
    nasforge = str(Path(sys.executable).with_name("nasforge"))
    launcher = SlurmLauncher([nasforge], env=cluster_env, profile=profile)
    job = launcher.submit(spec)
    while (state := launcher.state(job, spec)).state in ("PENDING", "RUNNING"):
        time.sleep(1)
    if state.state != "COMPLETED":
        logs = "".join((run_dir / f).read_text() for f in ("stdout.log", "stderr.log") if (run_dir / f).exists())
        raise RuntimeError(f"two-node job {state}:\n{logs[-3000:]}")
    return timing(run_dir, cfg, 2)


def run(quick: bool = False, method: str = "darts", engines: str = "ddp,horovod", tiles: int = 160) -> dict:
    if os.geteuid() != 0:
        return {"figure": "skipped: the two-node dev cluster needs root (network namespaces)", "results": {}}
    results = {}
    with tempfile.TemporaryDirectory(prefix="nasforge-bench-mn-") as tmp:
        env = {**os.environ, "NASFORGE_SLURM_DIR": f"{tmp}/slurm", "NASFORGE_SLURMCTLD_PORT": str(_port()),
               "NASFORGE_SLURMD_PORT": str(_port()), "NASFORGE_SLURM_NET": NET}
        subprocess.run(["bash", str(SCRIPT), "start", "--nodes", "2"], env=env, check=True, capture_output=True)
        try:
            cluster = {**os.environ, "SLURM_CONF": f"{tmp}/slurm/slurm.conf"}
            for engine in engines.split(","):
                if why := unavailable(engine):
                    results[engine] = {"skipped": why}
                    continue
                cfg, one, local = one_and_two(Path(tmp), engine, quick, method, int(tiles))
                nodes = _two_nodes(Path(tmp) / f"{engine}-nodes", cfg, cluster)
                results[engine] = {"one": one, "one_node": local, "two_nodes": nodes,
                                   "ratio": round(nodes["step_s"] / one["step_s"], 2),
                                   "ratio_vs_one_node": round(nodes["step_s"] / local["step_s"], 2)}
        finally:
            subprocess.run(["bash", str(SCRIPT), "stop"], env=env, capture_output=True)
    parts = [f"{e}: step {r['two_nodes']['step_s'] * 1e3:.0f} ms on 2 nodes vs {r['one']['step_s'] * 1e3:.0f} ms in "
             f"1 process ({r['ratio']}x) and {r['one_node']['step_s'] * 1e3:.0f} ms for 2 ranks on one node "
             f"({r['ratio_vs_one_node']}x), {r['two_nodes']['comm_bytes_per_step'] / 1e6:.2f} MB all-reduced per rank "
             f"per step" for e, r in results.items() if "two_nodes" in r]
    size = "tiny" if quick else f"C=8, depth 2, 4 nodes, 64 px, {tiles} tiles, global batch 8"
    return {"figure": f"{method} search, {size}, CPU, 1 thread per rank, the 2 nodes sharing 2 cores: "
                      + "; ".join(parts), "results": results}
