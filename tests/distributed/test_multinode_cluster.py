"""The dev cluster with two nodes on one machine (issue 20, first step): `deploy/slurm/dev-cluster.sh start --nodes 2`
puts each slurmd in a network and UTS namespace of its own, so a job's tasks on the two nodes have their own
hostnames and addresses, resolve each other's names, and talk over a network (a veth pair per node into a bridge),
as on a cluster. Root only (the `slurm_two_nodes` fixture, tests/conftest.py, says so when it skips); it tears the
cluster down at the end of the session and checks that no namespace, veth, bridge, hosts file or daemon is left."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from deploy.local import free_port
from tests.conftest import TWO_NODE_NET as NET

pytestmark = pytest.mark.slow


def _srun(env: dict, *cmd: str, timeout: int = 120) -> list[str]:
    out = subprocess.run(["srun", "-N2", "-n2", "--ntasks-per-node=1", *cmd], env=env, capture_output=True,
                         text=True, timeout=timeout)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return sorted(line for line in out.stdout.splitlines() if line.strip())


def test_the_two_nodes_are_two_hosts_with_their_own_addresses(slurm_two_nodes):
    env = slurm_two_nodes["env"]
    lines = _srun(env, "sh", "-c", 'echo "$SLURM_PROCID $(hostname) $(ip -4 -o addr show eth0 | awk \'{print $4}\')"'
                                   ' "$(getent hosts nfnode1 | cut -d" " -f1)" "$(getent hosts nfnode2 | cut -d" " -f1)"')
    assert lines == [f"0 nfnode1 {NET}.11/24 {NET}.11 {NET}.12", f"1 nfnode2 {NET}.12/24 {NET}.11 {NET}.12"]


def test_ranks_on_the_two_nodes_all_reduce_over_the_network(slurm_two_nodes, tmp_path):
    """Gloo across the namespaces: rank 0 listens on node 1's address, rank 1 reaches it from node 2; the sum of
    both ranks' values comes back to each."""
    env = slurm_two_nodes["env"]
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
