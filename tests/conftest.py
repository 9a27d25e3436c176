"""Real services for the tests, started on first use and stopped at the end of the session:
redis-server, PostgreSQL, the single-node SLURM cluster, and the platform (API + Celery worker)."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from deploy.local import ROOT, Stack, free_port

# One intra-op thread in tests and in the processes they start: on a shared 2-core machine, torch threads that
# wait on each other make tiny convolutions up to 20x slower. Set before anything imports torch.
os.environ.setdefault("OMP_NUM_THREADS", "1")

SHARED_DATA = Path(os.environ.get("NASFORGE_SHARED_DATA", ROOT.parent / "shared" / "data"))
ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture(scope="session")
def services_dir():
    d = Path(tempfile.mkdtemp(prefix="nasforge-test-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_url(services_dir):
    with Stack(services_dir / "redis") as stack:
        yield stack.redis()


@pytest.fixture(scope="session")
def postgres_url(services_dir):
    with Stack(services_dir / "postgres") as stack:
        yield stack.postgres()


@pytest.fixture(scope="session")
def slurm_cluster(services_dir):
    """A real single-node SLURM cluster (munge, slurmctld, slurmd); yields the environment that reaches it."""
    if shutil.which("slurmctld") is None and not Path("/usr/sbin/slurmctld").exists():
        pytest.skip("slurm-wlm is not installed (scripts/install-system.sh installs it)")
    if os.geteuid() != 0:
        pytest.skip("the dev cluster runs its daemons as root")
    cluster_dir = services_dir / "slurm"
    env = {
        **os.environ,
        "NASFORGE_SLURM_DIR": str(cluster_dir),
        "NASFORGE_SLURMCTLD_PORT": str(free_port()),
        "NASFORGE_SLURMD_PORT": str(free_port()),
    }
    script = ROOT / "deploy" / "slurm" / "dev-cluster.sh"
    out = subprocess.run(["bash", str(script), "start"], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, f"dev cluster did not start:\n{out.stdout}\n{out.stderr}"
    slurm_env = {**os.environ, "SLURM_CONF": str(cluster_dir / "slurm.conf")}
    try:
        yield slurm_env
    finally:
        subprocess.run(["bash", str(script), "stop"], env=env, capture_output=True, timeout=120)


# The two-node cluster's own addresses, inside the namespaces deploy/slurm/dev-cluster.sh creates (NASFORGE_SLURM_NET).
TWO_NODE_NET = "10.77.9"


def namespaces_impossible() -> str | None:
    """Why nodes in network namespaces cannot be made here, or None."""
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


def namespace_leftovers() -> list[str]:
    """The two-node cluster's namespaces, veths, bridge and hosts files still present."""
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    left = [n.split()[0] for n in netns.splitlines() if n.startswith("nfnode")]
    left += [w for line in links.splitlines() for w in line.split()[1:2] if w.startswith(("nfv", "nfslurm0"))]
    left += [str(p) for p in Path("/etc/netns").glob("nfnode*")]
    return left


@pytest.fixture(scope="session")
def slurm_two_nodes(services_dir):
    """A real SLURM cluster of two nodes on this machine (issue 20): each slurmd in a network and UTS namespace of
    its own (hostname nfnode1 / nfnode2, address TWO_NODE_NET.11 / .12), so a job's tasks on the two nodes talk over
    a network as on a cluster. Root only, since namespaces cannot be made otherwise; it skips saying so. A silent
    slurmd is given 10 s (SlurmdTimeout) before its node is DOWN, so a node failure ends its job in seconds.
    Yields {"env": the environment that reaches it, "start": a callable that starts what is not running (a node a
    test killed)}. Torn down at the end of the session, checking nothing is left."""
    reason = namespaces_impossible()
    if reason:
        pytest.skip(reason)
    cluster_dir = services_dir / "slurm-2-nodes"
    env = {**os.environ, "NASFORGE_SLURM_DIR": str(cluster_dir), "NASFORGE_SLURMCTLD_PORT": str(free_port()),
           "NASFORGE_SLURMD_PORT": str(free_port()), "NASFORGE_SLURM_NET": TWO_NODE_NET,
           "NASFORGE_SLURMD_TIMEOUT": "10"}
    script = ROOT / "deploy" / "slurm" / "dev-cluster.sh"

    def start() -> None:
        out = subprocess.run(["bash", str(script), "start", "--nodes", "2"], env=env, capture_output=True, text=True,
                             timeout=120)
        assert out.returncode == 0, f"two-node dev cluster did not start:\n{out.stdout}\n{out.stderr}"

    try:
        start()
        yield {"env": {**os.environ, "SLURM_CONF": str(cluster_dir / "slurm.conf")}, "start": start}
    finally:
        stop = subprocess.run(["bash", str(script), "stop"], env=env, capture_output=True, text=True, timeout=120)
        assert stop.returncode == 0, stop.stderr
        assert namespace_leftovers() == [], "the cluster's namespaces, veths, bridge or hosts files were left behind"
        daemons = subprocess.run(["pgrep", "-f", f"slurm.*{cluster_dir}"], capture_output=True, text=True).stdout
        assert daemons.strip() == "", f"daemons left running: {daemons}"


@pytest.fixture(scope="session")
def platform(services_dir, redis_url):
    """The API and one Celery worker on a fresh data directory, as `make run` starts them."""
    data_dir = services_dir / "platform"
    port = free_port()
    env = {"REDIS_URL": redis_url, "NASFORGE_DATA_DIR": str(data_dir), "PYTHONUNBUFFERED": "1"}
    with Stack(data_dir) as stack:
        stack.worker(env)
        stack.api(env, port)
        yield {"url": f"http://127.0.0.1:{port}", "env": env, "data_dir": data_dir, "stack": stack}


@pytest.fixture(scope="session")
def artifacts_dir():
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def shared_data():
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA} (set NASFORGE_SHARED_DATA to the shared/data folder)")
    return SHARED_DATA


def chromium_path() -> str:
    for p in ("/usr/bin/chromium", "/usr/bin/chromium-browser"):
        if Path(p).exists():
            return p
    pytest.skip("Chromium not found (Debian package chromium; scripts/install-system.sh installs it)")


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium driven by Playwright (Playwright's own browser download is not possible here)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(
            executable_path=chromium_path(),
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        )
        yield b
        b.close()


# A search as small as a real one can be (one down/up level, two-node cells, 16 px tiles, one epoch each of search
# and retrain), for the tests that need a finished run on the platform.
TINY_SEARCH = {
    "name": "tiny remote search", "seed": 0,
    "space": {"channels": 4, "depth": 1,
              "cells": {t: {"ops": ["none", "max_pool_3x3", "skip_connect", "sep_conv_3x3"], "nodes": 2}
                        for t in ("normal", "down", "up")}},
    "data": {"tile_size": 16, "num_tiles": 16, "batch_size": 4},
    "search": {"method": "darts", "epochs": 1, "warmup_epochs": 0},
    "retrain": {"epochs": 1},
    "baseline": {"random": False},
}


@pytest.fixture(scope="session")
def remote_run(platform, tmp_path_factory):
    """TINY_SEARCH submitted to the platform with `nasforge remote submit` and followed to its end with
    `nasforge remote follow`, as a user at another machine would (token in a mode-0600 file); the outputs, the run
    id and the token. Shared by the remote-client test and the evaluation-tab browser test: one search for both."""
    import re

    import yaml
    from typer.testing import CliRunner

    from nas_core.cli import app
    from tests.browser.conftest import admin_token

    home = tmp_path_factory.mktemp("remote")
    token = admin_token(platform["env"])
    token_file = home / "token"
    token_file.write_text(token + "\n")
    token_file.chmod(0o600)
    experiment = home / "tiny.yaml"
    experiment.write_text(yaml.safe_dump(TINY_SEARCH))
    env = {"NASFORGE_SERVER": platform["url"], "NASFORGE_TOKEN": ""}
    auth = ["--token-file", str(token_file)]
    runner = CliRunner()
    submitted = runner.invoke(app, ["remote", "submit", str(experiment), *auth], env=env)
    assert submitted.exit_code == 0, submitted.output
    run_id = int(re.match(r"run (\d+) ", submitted.output).group(1))
    followed = runner.invoke(app, ["remote", "follow", str(run_id), *auth], env=env)
    return {"run_id": run_id, "token": token, "token_file": token_file, "env": env, "home": home,
            "submit": submitted.output, "follow": followed}
