"""The dev cluster with two nodes on one machine (issue 20, first step): `deploy/slurm/dev-cluster.sh start --nodes 2`
puts each slurmd in a network and UTS namespace of its own, so a job's tasks on the two nodes have their own
hostnames and addresses and talk over a network (a veth pair per node into a bridge), as on a cluster. Root only:
namespaces cannot be made otherwise, and the test says so when it skips. The cluster is torn down after the module
and the test checks that no namespace, veth, bridge or daemon is left."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from deploy.local import free_port

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy" / "slurm" / "dev-cluster.sh"
NET = "10.77.9"  # the script's own addresses, inside the namespaces it creates (NASFORGE_SLURM_NET)

pytestmark = pytest.mark.slow


def _namespaces_possible() -> str | None:
    """Why two namespaced nodes cannot be made here, or None."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("slurmctld") is None and not Path("/usr/sbin/slurmctld").exists():
        return "slurm-wlm is not installed (scripts/install-system.sh installs it)"
    for tool in ("ip", "unshare"):
        if shutil.which(tool) is None:
            return f"{tool} is missing (Debian iproute2 / util-linux; scripts/install-system.sh)"
    probe = subprocess.run(["unshare", "--net", "--uts", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"this machine refuses new network namespaces: {probe.stderr.strip()}"
    return None


def _leftovers() -> list[str]:
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    left = [n.split()[0] for n in netns.splitlines() if n.startswith("nfnode")]
    left += [w for line in links.splitlines() for w in line.split()[1:2] if w.startswith(("nfv", "nfslurm0"))]
    return left


@pytest.fixture(scope="module")
def two_nodes(tmp_path_factory):
    reason = _namespaces_possible()
    if reason:
        pytest.skip(reason)
    cluster_dir = tmp_path_factory.mktemp("slurm-2-nodes")
    env = {**os.environ, "NASFORGE_SLURM_DIR": str(cluster_dir), "NASFORGE_SLURMCTLD_PORT": str(free_port()),
           "NASFORGE_SLURMD_PORT": str(free_port()), "NASFORGE_SLURM_NET": NET}
    out = subprocess.run(["bash", str(SCRIPT), "start", "--nodes", "2"], env=env, capture_output=True, text=True,
                         timeout=120)
    try:
        assert out.returncode == 0, f"two-node dev cluster did not start:\n{out.stdout}\n{out.stderr}"
        yield {**os.environ, "SLURM_CONF": str(cluster_dir / "slurm.conf")}, cluster_dir
    finally:
        stop = subprocess.run(["bash", str(SCRIPT), "stop"], env=env, capture_output=True, text=True, timeout=120)
        assert stop.returncode == 0, stop.stderr
        assert _leftovers() == [], "the cluster's namespaces, veths or bridge were left behind"
        daemons = subprocess.run(["pgrep", "-f", f"slurm.*{cluster_dir}"], capture_output=True, text=True).stdout
        assert daemons.strip() == "", f"daemons left running: {daemons}"


def _srun(env: dict, *cmd: str, timeout: int = 120) -> list[str]:
    out = subprocess.run(["srun", "-N2", "-n2", "--ntasks-per-node=1", *cmd], env=env, capture_output=True,
                         text=True, timeout=timeout)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return sorted(line for line in out.stdout.splitlines() if line.strip())


def test_the_two_nodes_are_two_hosts_with_their_own_addresses(two_nodes):
    env, _ = two_nodes
    lines = _srun(env, "sh", "-c", 'echo "$SLURM_PROCID $(hostname) $(ip -4 -o addr show eth0 | awk \'{print $4}\')"')
    assert lines == [f"0 nfnode1 {NET}.11/24", f"1 nfnode2 {NET}.12/24"]


def test_ranks_on_the_two_nodes_all_reduce_over_the_network(two_nodes, tmp_path):
    """Gloo across the namespaces: rank 0 listens on node 1's address, rank 1 reaches it from node 2; the sum of
    both ranks' values comes back to each."""
    env, _ = two_nodes
    script = tmp_path / "all_reduce.py"
    script.write_text(textwrap.dedent(f"""
        import os, socket, torch, torch.distributed as dist
        rank, world = int(os.environ["SLURM_PROCID"]), int(os.environ["SLURM_NTASKS"])
        dist.init_process_group("gloo", init_method="tcp://{NET}.11:{free_port()}", rank=rank, world_size=world)
        t = torch.tensor([float(rank + 1)])
        dist.all_reduce(t)
        print(rank, socket.gethostname(), t.item(), flush=True)
    """))
    lines = _srun({**env, "GLOO_SOCKET_IFNAME": "eth0", "OMP_NUM_THREADS": "1"}, sys.executable, str(script))
    assert lines == ["0 nfnode1 3.0", "1 nfnode2 3.0"]
