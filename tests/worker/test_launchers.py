"""Launchers on their own: the local process group, the argv for several processes, and the SLURM script."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from nas_core.config import ExperimentConfig, LauncherConfig, SlurmConfig
from tests.worker.conftest import FAKE_SEARCH, file_seqs, wait_for
from worker.launchers import ClusterProfile, LocalLauncher, RunSpec, SlurmLauncher, confine
from worker.launchers._base import parallel_argv

HOSTILE = ["; rm -rf /", "$(touch PWNED)", "`touch PWNED`", "a\nb", "x' && touch PWNED '", "a b", "${IFS}", "|id"]


def _spec(run_dir: Path, epochs: int = 3, processes: int = 1, engine: str = "none", resume: bool = False,
          fake: dict | None = None, method: str = "darts", **slurm) -> RunSpec:
    cfg = ExperimentConfig.model_validate({"name": "t", "description": json.dumps({"fake": fake or {}}),
                                           "search": {"epochs": epochs, "method": method},
                                           "distributed": {"engine": engine}})
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(json.dumps(cfg.model_dump(mode="json")))  # JSON is YAML
    launcher = LauncherConfig(processes=processes, slurm=SlurmConfig(**slurm))
    return RunSpec(run_id=7, run_dir=run_dir, config=cfg, launcher=launcher, resume=resume)


def _local(grace: float = 2.0) -> LocalLauncher:
    return LocalLauncher([sys.executable, str(FAKE_SEARCH)], cancel_grace_s=grace)


def test_local_run_completes_and_its_exit_code_is_known_to_a_fresh_launcher(tmp_path):
    spec = _spec(tmp_path / "runs" / "7", epochs=2, fake={"step_s": 0.05})
    pid = _local().submit(spec)
    assert os.getpgid(int(pid)) == int(pid), "the run leads its own process group"
    # A second launcher object (a restarted worker) is not the parent and still learns the outcome.
    state = wait_for(lambda: (s := LocalLauncher([]).state(pid, spec)).state != "RUNNING" and s, 30, what="run end")
    assert state.state == "COMPLETED" and state.exit_code == 0
    assert file_seqs(spec.run_dir) == list(range(1, 7))
    assert LocalLauncher([]).find(spec) is None


def test_local_failure_reports_its_exit_code(tmp_path):
    spec = _spec(tmp_path / "r", epochs=1, fake={"step_s": 0.01, "exit": 3})
    pid = _local().submit(spec)
    state = wait_for(lambda: (s := _local().state(pid, spec)).state != "RUNNING" and s, 30, what="run end")
    assert (state.state, state.exit_code) == ("FAILED", 3)
    assert "failing on purpose" in (spec.run_dir / "stderr.log").read_text()


def test_local_cancel_kills_the_whole_group(tmp_path):
    spec = _spec(tmp_path / "r", epochs=100, fake={"step_s": 0.2})
    launcher = _local()
    pid = launcher.submit(spec)
    wait_for(lambda: file_seqs(spec.run_dir), 30, what="first event")
    child = _children_of(int(pid))
    assert child, "the search runs as a child of the group leader"
    assert launcher.find(spec) == pid
    launcher.cancel(pid, spec)
    for p in [int(pid), *child]:
        assert not _alive(p), f"process {p} of the cancelled run is still alive"
    assert launcher.state(pid, spec).state in ("PREEMPTED", "FAILED", "LOST")


def test_local_group_killed_from_outside_is_lost_not_failed(tmp_path):
    spec = _spec(tmp_path / "r", epochs=100, fake={"step_s": 0.2})
    launcher = _local()
    pid = launcher.submit(spec)
    wait_for(lambda: file_seqs(spec.run_dir), 30, what="first event")
    os.killpg(int(pid), signal.SIGKILL)  # what a crashed node or the OOM killer does to the whole group
    state = wait_for(lambda: (s := launcher.state(pid, spec)).state != "RUNNING" and s, 10, what="group gone")
    assert state.state == "LOST" and "without an exit record" in state.reason


def test_several_processes_use_mpirun_torchrun_or_horovodrun(tmp_path):
    argv = ["nasforge", "search", "config.yaml"]
    assert parallel_argv(_spec(tmp_path / "a"), argv) == argv
    # A discrete search's ranks are its MPI orchestrator: plain mpirun, never a DDP/Horovod launcher.
    mpi = parallel_argv(_spec(tmp_path / "b", processes=3, method="random"), argv)
    assert Path(mpi[0]).name == "mpirun" and mpi[mpi.index("-np") + 1] == "3" and mpi[-3:] == argv
    ddp = parallel_argv(_spec(tmp_path / "c", processes=2, engine="ddp"), argv)
    assert Path(ddp[0]).name == "torchrun" and "--nproc-per-node=2" in ddp and "--no-python" in ddp and ddp[-3:] == argv
    hvd = parallel_argv(_spec(tmp_path / "d", processes=2, engine="horovod"), argv)
    assert Path(hvd[0]).name in ("horovodrun", "mpirun") and hvd[-3:] == argv


# Several local processes under mpirun, for real: tests/worker/test_discrete_mpi.py runs the real nasforge search
# on 3 ranks through this launcher (the stand-in runs as one process only; see tests/worker/fake_search.py).


def test_run_dirs_are_confined_to_the_runs_root(tmp_path):
    root = tmp_path / "runs"
    root.mkdir()
    assert confine(root / "5", root) == (root / "5").resolve()
    for bad in (root / ".." / "elsewhere", root, tmp_path, Path("/etc"), root / "5" / ".." / ".." / "x"):
        with pytest.raises(ValueError, match="outside the runs root"):
            confine(bad, root)
    (root / "link").symlink_to("/tmp")
    with pytest.raises(ValueError, match="outside the runs root"):
        confine(root / "link" / "x", root)


@pytest.mark.parametrize("field", ["partition", "account", "qos", "mem", "time"])
@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_slurm_values_are_refused_by_the_schema(field, value):
    with pytest.raises(ValidationError) as info:
        LauncherConfig.model_validate({"slurm": {field: value}})
    assert field in str(info.value)


def test_rendered_script_quotes_everything_and_runs_nothing_it_was_given(tmp_path):
    # A run dir and environment values with shell syntax in them: quoted, so running the script creates nothing.
    run_dir = tmp_path / "runs" / "$(touch PWNED1) `touch PWNED2`; touch PWNED3"
    spec = _spec(run_dir, partition="debug", account="proj-1", qos="normal", mem="2G", time="0-00:10:00",
                 nodes=1, tasks_per_node=1, gpus_per_node=2)
    spec.extra_env = {"EVIL": "$(touch PWNED4); `touch PWNED5` \n touch PWNED6"}
    profile = ClusterProfile(modules=["cuda/12.1"], environment={"OMP_NUM_THREADS": "4 $(touch PWNED7)"})
    witness = tmp_path / "argv.txt"
    # The "search" records its argv, so the test can check that the command arrives intact.
    echo = [sys.executable, "-c", f"import sys; open({str(witness)!r}, 'w').write(repr(sys.argv[1:]))"]
    script = SlurmLauncher(echo, profile=profile).render(spec)
    for line in ("#SBATCH --partition=debug", "#SBATCH --account=proj-1", "#SBATCH --qos=normal", "#SBATCH --mem=2G",
                 "#SBATCH --time=0-00:10:00", "#SBATCH --gpus-per-node=2", "module load cuda/12.1"):
        assert line in script.splitlines()
    assert "{{" not in script
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "module").write_text("#!/bin/sh\nexit 0\n")  # Lmod is not installed here
    (bin_dir / "module").chmod(0o755)
    out = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"})
    assert out.returncode == 0, out.stderr
    assert eval(witness.read_text()) == ["search", "config.yaml", "--run-dir", ".", "--resume"]
    assert not list(tmp_path.rglob("PWNED*")) and not list(Path.cwd().glob("PWNED*"))


def test_cluster_profile_defaults_fill_what_the_experiment_left_empty(tmp_path):
    profile_file = tmp_path / "cluster.yaml"
    profile_file.write_text((Path(__file__).resolve().parents[2] / "deploy" / "slurm" / "cluster-example.yaml").read_text())
    profile = ClusterProfile.load(profile_file)
    script = SlurmLauncher(["nasforge"], profile=profile).render(_spec(tmp_path / "r", account="mine"))
    assert "#SBATCH --partition=gpu" in script and "#SBATCH --account=mine" in script
    assert "#SBATCH --constraint=a100" in script and "export OMP_NUM_THREADS=8" in script
    bad = tmp_path / "bad.yaml"
    bad.write_text("defaults: {partition: 'a;b'}\n")
    with pytest.raises(ValueError, match="bad.yaml"):
        ClusterProfile.load(bad)
    with pytest.raises(ValueError, match="modules"):
        SlurmLauncher(["x"], profile=ClusterProfile(modules=["cuda; rm -rf /"])).render(_spec(tmp_path / "r"))


@pytest.mark.slurm
def test_sbatch_submit_find_state_cancel_on_the_dev_cluster(slurm_cluster, tmp_path):
    spec = _spec(tmp_path / "runs" / "7", epochs=200, fake={"step_s": 0.2})
    launcher = SlurmLauncher([sys.executable, str(FAKE_SEARCH)], env=slurm_cluster)
    job = launcher.submit(spec)
    assert job.isdigit() and launcher.find(spec) == job, "a resubmission finds the live job by its name"
    shown = launcher.show(job)
    assert shown["JobName"] == "nasforge-run-7" and shown["WorkDir"] == str(spec.run_dir)
    wait_for(lambda: launcher.state(job, spec).state == "RUNNING", 60, what="job running")
    listed = launcher.snapshot()[job]  # one squeue call for every nasforge job, as a reconcile sweep takes it
    assert listed["JobState"] == "RUNNING" and listed["Restarts"] == "0"
    assert launcher.state(job, spec, known=listed) == launcher.state(job, spec)
    wait_for(lambda: file_seqs(spec.run_dir), 60, what="events from the job")
    launcher.cancel(job, spec)
    state = wait_for(lambda: (s := launcher.state(job, spec)).state not in ("RUNNING", "PENDING") and s, 60, what="end")
    assert state.state == "CANCELLED"
    assert launcher.find(spec) is None


def _children_of(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = open(f"/proc/{entry}/stat").read()
            except OSError:
                continue
            if int(stat[stat.rfind(")") + 2:].split()[1]) == pid:
                out.append(int(entry))
    return out


def _alive(pid: int) -> bool:
    try:
        stat = open(f"/proc/{pid}/stat").read()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2] not in "ZX"


def test_jobs_do_not_inherit_the_platform_credentials(tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://nasforge:hunter2@db/nasforge")
    monkeypatch.setenv("REDIS_URL", "redis://:hunter2@redis:6379/0")
    monkeypatch.setenv("POSTGRES_PASSWORD", "hunter2")
    monkeypatch.setenv("NASFORGE_KEEP_ME", "yes")
    spec = _spec(tmp_path / "r")
    dump = [sys.executable, "-c", "import json, os; json.dump(dict(os.environ), open('env.json', 'w'))"]
    pid = LocalLauncher(dump).submit(spec)
    wait_for(lambda: LocalLauncher([]).state(pid, spec).state == "COMPLETED", 30, what="the env dump")
    env = json.loads((spec.run_dir / "env.json").read_text())
    assert env["NASFORGE_KEEP_ME"] == "yes" and env["NASFORGE_RUN_ID"] == "7"
    assert "hunter2" not in json.dumps(env)
