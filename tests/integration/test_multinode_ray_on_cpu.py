"""Multi-node launch as far as one machine allows, the way a user does it on a fresh cluster.

The ``cluster`` fixture starts a Ray head and a worker node with our scripts from a clean
environment -- a fresh ``$HOME`` (so no ~/.ray/auth_token), no RAY_AUTH_TOKEN, no W&B key, the
raylets' working directory that ``$HOME`` -- as two raylets on this host with their own resources
(the head: CPUs only; the worker: CPUs and the one fake "GPU" a CPU run places its trainer on), own
ports and own --temp-dir (so ``ray.init()`` elsewhere on this machine never finds it). Then:

- a probe submitted through ``scripts/submit.sh`` as a Ray job and as an attached driver sees both
  nodes;
- ``quickstart_tiny`` submitted through ``scripts/submit.sh`` (a Ray job: its driver runs on the
  head, the trainer on the worker) finishes, and its JSONL, offline W&B files and checkpoints land
  in ``<repo>/runs/<project>/<experiment>`` as the README says -- not in the raylets' working
  directory;
- dry runs of the SLURM script.

Teardown signals only the processes this module started (each node's launch script and what runs
under it, and processes named by its temp dir); never a machine-wide ``ray stop``. The fixture is module-scoped and reusable: ``Cluster``
keeps each node's ``Popen`` and lists the node's processes (``processes``, ``pids``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[2]
PROBE = ("import ray, time; ray.init(logging_level='ERROR'); t = time.time()\n"
         "while sum(n['Alive'] for n in ray.nodes()) < 2 and time.time() - t < 60: time.sleep(0.5)\n"
         "print('ASPO_NODES', sum(n['Alive'] for n in ray.nodes()), "
         "sorted({n['NodeManagerPort'] for n in ray.nodes() if n['Alive']}).__len__())")
# No pool of idle Ray workers started ahead of need (~100 MB each), as hardware/cpu.yaml asks of a local cluster.
NO_PRESTART = json.dumps({"enable_worker_prestart": False, "prestart_worker_first_driver": False})


def _free_ports(k: int) -> list[int]:
    socks = [socket.socket() for _ in range(k)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def clean_env(home: Path, **extra) -> dict:
    """A user's shell on a fresh cluster: this venv on PATH, nothing of Ray, W&B or aspo set."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("RAY_", "WANDB_", "ASPO_", "VERL_", "SLURM_")) and k not in ("DRY_RUN", "NETRC")}
    env.update({"HOME": str(home), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
                "RAY_USAGE_STATS_ENABLED": "0", **{k: str(v) for k, v in extra.items()}})
    return env


@dataclass
class Cluster:
    home: Path                # the fresh $HOME every node and client shares (and the raylets' cwd)
    temp: str                 # Ray's --temp-dir for both nodes
    port: int
    dash: int
    log: Path                 # the launch scripts' output
    nodes: dict[str, subprocess.Popen] = field(default_factory=dict)  # "head", "worker": own process groups

    def env(self, **extra) -> dict:
        return clean_env(self.home, RAY_HEAD_ADDRESS="127.0.0.1", RAY_PORT=self.port, RAY_DASHBOARD_PORT=self.dash,
                         **extra)

    def processes(self, node: str) -> list[psutil.Process]:
        """``node``'s processes: its launch script and everything under it (``ray start --block``,
        which makes itself a process group leader, and the raylet, its workers, ...). psutil's
        signals check the process is still the same one, so a reused PID is never hit."""
        try:
            root = psutil.Process(self.nodes[node].pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def pids(self, node: str) -> list[int]:
        return [p.pid for p in self.processes(node)]


def _start_node(cluster: Cluster, kind: str, args: list[str], env: dict, out) -> None:
    script = ROOT / "scripts" / f"ray_start_{kind}.sh"
    cluster.nodes[kind] = subprocess.Popen(["bash", str(script), *args], env=env, stdout=out, stderr=out,
                                           cwd=cluster.home, start_new_session=True)


def _wait_for(cluster: Cluster, n_nodes: int, timeout: float = 180) -> None:
    """Until the dashboard (jobs API) answers and ``n_nodes`` raylets are alive."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        for kind, proc in cluster.nodes.items():
            if proc.poll() is not None:
                pytest.fail(f"the {kind} node's script exited ({proc.returncode}):\n{cluster.log.read_text()[-3000:]}")
        try:
            socket.create_connection(("127.0.0.1", cluster.dash), timeout=1).close()
            break
        except OSError:
            time.sleep(1)
    else:
        pytest.fail(f"the Ray dashboard never came up; launch log:\n{cluster.log.read_text()[-3000:]}")
    wait = (f"import ray, time; ray.init(logging_level='ERROR'); t = time.time()\n"
            f"while sum(n['Alive'] for n in ray.nodes()) < {n_nodes} and time.time() - t < {deadline - time.time():.0f}:"
            f" time.sleep(0.5)\nprint(sum(n['Alive'] for n in ray.nodes()))")
    env = cluster.env(RAY_ADDRESS=f"127.0.0.1:{cluster.port}", RAY_AUTH_MODE="token")
    out = subprocess.run([sys.executable, "-c", wait], env=env, capture_output=True, text=True, timeout=timeout)
    if out.stdout.strip() != str(n_nodes):
        pytest.fail(f"{out.stdout.strip() or 'no'} of {n_nodes} nodes alive: {out.stderr[-2000:]}\n"
                    f"launch log:\n{cluster.log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def cluster():
    if shutil.which("ray", path=str(Path(sys.executable).parent)) is None:
        pytest.skip("ray CLI not installed next to this python")
    temp = tempfile.mkdtemp(prefix="aspo-ray-", dir="/tmp")  # short: Ray's unix sockets live here
    home = Path(temp) / "home"
    home.mkdir()
    port, dash, agent_h, agent_w, client = _free_ports(5)
    c = Cluster(home=home, temp=temp, port=port, dash=dash, log=Path(temp) / "launch.log")
    common = ["--num-cpus=8", "--object-store-memory=200000000", f"--temp-dir={temp}", "--disable-usage-stats"]
    env = c.env(RAY_BLOCK=1, RAY_HEAD_IP="127.0.0.1", RAY_WAIT_S=120)  # HEAD_IP: keep it on this host
    try:
        with c.log.open("w") as out:
            _start_node(c, "head", [*common, "--num-gpus=0", f"--system-config={NO_PRESTART}",
                                    f"--dashboard-agent-listen-port={agent_h}", f"--ray-client-server-port={client}"],
                        env, out)
            _start_node(c, "worker", [f"127.0.0.1:{port}", *common, "--num-gpus=1",
                                      f"--dashboard-agent-listen-port={agent_w}"], env, out)
        _wait_for(c, 2)
        yield c
    finally:
        _stop(c)


def _stop(c: Cluster) -> None:
    """SIGTERM to every process of our nodes, then SIGKILL to what is left and to processes named
    by our temp dir that left the tree."""
    procs = [p for kind in c.nodes for p in c.processes(kind)]
    for p in procs:
        try:
            p.terminate()
        except psutil.NoSuchProcess:
            pass
    # Most of Ray's processes were still there 10 s and 30 s after SIGTERM (2 busy cores): a short
    # grace, then SIGKILL.
    _, alive = psutil.wait_procs(procs, timeout=5)
    left = {p.pid: p for p in alive}
    for pid in subprocess.run(["pgrep", "-f", c.temp], capture_output=True, text=True).stdout.split():
        try:
            left.setdefault(int(pid), psutil.Process(int(pid)))
        except psutil.NoSuchProcess:
            pass
    for p in left.values():
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    for proc in c.nodes.values():
        proc.wait(timeout=30)
    shutil.rmtree(c.temp, ignore_errors=True)


@pytest.mark.slow
def test_head_made_the_token_the_worker_joined_with_it(cluster):
    token = cluster.home / ".ray" / "auth_token"
    assert token.stat().st_mode & 0o777 == 0o600 and len(token.read_text()) == 64
    log = cluster.log.read_text()
    assert f"auth token: created {token} (mode 0600)" in log
    # What a test that kills the worker node needs: that node's raylet among its processes.
    assert any(p.name() == "raylet" for p in cluster.processes("worker"))
    assert not set(cluster.pids("worker")) & set(cluster.pids("head"))


@pytest.mark.slow
def test_job_submit_and_driver_see_head_and_worker(cluster):
    env = cluster.env()
    job = subprocess.run(["bash", str(ROOT / "scripts" / "submit.sh"), "--", "python", "-c", PROBE],
                         env=env, capture_output=True, text=True, timeout=240)
    assert job.returncode == 0, job.stdout[-3000:] + job.stderr[-3000:]
    assert re.search(r"ASPO_NODES 2 2", job.stdout), job.stdout[-3000:]
    assert "succeeded" in job.stdout + job.stderr

    driver = subprocess.run(["bash", str(ROOT / "scripts" / "submit.sh"), "--", "python", "-c", PROBE],
                            env={**env, "ASPO_SUBMIT": "driver"}, capture_output=True, text=True, timeout=240)
    assert driver.returncode == 0, driver.stderr[-3000:]
    assert "ASPO_NODES 2 2" in driver.stdout


@pytest.fixture(scope="module")
def quickstart_job(cluster):
    """quickstart_tiny, 2 steps, submitted as a user would: relative output paths, no W&B key."""
    project, experiment = "aspo-multinode-test", f"run-{uuid.uuid4().hex[:8]}"
    run_dir = ROOT / "runs" / project / experiment
    cmd = ["bash", str(ROOT / "scripts" / "submit.sh"), "--", "aspo-train", "--config-name", "quickstart_tiny",
           "hardware=cpu", f"trainer.project_name={project}", f"trainer.experiment_name={experiment}",
           "trainer.total_training_steps=2", "trainer.save_freq=2", "data.train_max_samples=16"]
    try:
        job = subprocess.run(cmd, env=cluster.env(), capture_output=True, text=True, timeout=600)
        (Path(cluster.temp) / "quickstart_job.log").write_text(job.stdout + job.stderr)
        yield job, run_dir
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
        try:
            (ROOT / "runs" / project).rmdir()
        except OSError:
            pass


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_quickstart_job_on_the_cluster_writes_where_the_readme_says(cluster, quickstart_job):
    job, run_dir = quickstart_job
    out = job.stdout + job.stderr
    assert job.returncode == 0 and "succeeded" in out, out[-5000:]
    assert "ignored" in out and "attaching to the Ray cluster" in out  # ray_init.num_cpus/num_gpus dropped
    assert f"metrics (JSONL): {run_dir}/metrics.jsonl" in out

    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    assert sorted({r["step"] for r in records}) == [1, 2]
    offline = list((run_dir / "wandb").glob("offline-run-*"))
    assert len(offline) == 1 and list(offline[0].glob("*.wandb")), sorted((run_dir / "wandb").glob("*"))
    assert (run_dir / "latest_checkpointed_iteration.txt").read_text().strip() == "2"
    assert any((run_dir / "global_step_2" / "actor").iterdir())
    # Nothing landed in the raylets' working directory (their $HOME) or in a default verl place.
    assert not (cluster.home / "runs").exists() and not (cluster.home / "wandb").exists()
    assert not list(cluster.home.glob("*.jsonl"))


def test_submit_dry_run_and_errors(tmp_path):
    env = clean_env(tmp_path, DRY_RUN=1, RAY_HEAD_ADDRESS="10.1.2.3", NNODES=2)
    dry = subprocess.run(["bash", str(ROOT / "scripts" / "submit.sh"), "aspo_math_1p5b", "trainer.total_training_steps=7"],
                         env=env, capture_output=True, text=True, timeout=30)
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.startswith("+ ray job submit --address=http://10.1.2.3:8265 -- bash -c ")
    assert "NNODES=2\\ bash\\ recipes/aspo_math_1p5b.sh\\ trainer.total_training_steps=7" in dry.stdout
    # The job's driver gets the submitting shell's aspo/W&B knobs, never the key.
    knobs = subprocess.run(["bash", str(ROOT / "scripts" / "submit.sh"), "aspo_math_1p5b"], capture_output=True, text=True,
                           env={**env, "ASPO_DATA_DIR": "/shared/data", "WANDB_PROJECT": "p", "WANDB_API_KEY": "secret"},
                           timeout=30)
    assert "NNODES=2\\ ASPO_DATA_DIR=/shared/data\\ WANDB_PROJECT=p\\ bash\\ recipes/aspo_math_1p5b.sh" in knobs.stdout
    assert "secret" not in knobs.stdout
    bad = subprocess.run(["bash", str(ROOT / "scripts" / "submit.sh"), "no_such_recipe"], env=env,
                         capture_output=True, text=True, timeout=30)
    assert bad.returncode == 2 and "unknown recipe 'no_such_recipe'; available: " in bad.stderr


def test_sbatch_dry_run_prints_the_plan(tmp_path):
    env = clean_env(tmp_path, DRY_RUN=1, DRY_RUN_NODES="gpu01 gpu02 gpu03", GPUS_PER_NODE=4)
    env.pop("SLURM_JOB_NODELIST", None)
    done = subprocess.run(["bash", str(ROOT / "scripts" / "slurm" / "aspo.sbatch"), "grpo_math_1p5b", "trainer.save_freq=5"],
                          env=env, capture_output=True, text=True, timeout=30, cwd="/")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 4
    assert lines[0].startswith("+ srun --nodes=1 --ntasks=1 -w gpu01 env RAY_BLOCK=1") and "ray_start_head.sh --num-gpus=4" in lines[0]
    assert all("-w gpu0%d" % i in lines[i - 1] and "ray_start_worker.sh" in lines[i - 1] for i in (2, 3))
    assert "NNODES=3 bash recipes/grpo_math_1p5b.sh trainer.n_gpus_per_node=4 trainer.save_freq=5" in lines[3]
    assert f"auth token: would create {tmp_path}/.ray/auth_token (mode 0600)" in done.stderr
    head = (ROOT / "scripts" / "slurm" / "aspo.sbatch").read_text()
    assert "#SBATCH --gpus-per-node=8" in head and "verl==0.9.1" in head
    outside = subprocess.run(["bash", str(ROOT / "scripts" / "slurm" / "aspo.sbatch"), "grpo_math_1p5b"],
                             env={k: v for k, v in env.items() if k != "DRY_RUN"}, capture_output=True, text=True, timeout=30)
    assert outside.returncode == 2 and "not inside a SLURM allocation" in outside.stderr


@pytest.fixture(scope="module")
def lost_node_job(cluster, quickstart_job, tmp_path_factory):
    """quickstart_tiny submitted with ``aspo.max_restarts=1``; once step 1 is checkpointed, every process
    of the worker node (the one with the "GPU": the trainer's node) is SIGKILLed, and a replacement
    node joins, as a cluster manager would bring one. Runs after ``quickstart_job`` on the same cluster."""
    project, experiment = "aspo-multinode-test", f"lost-{uuid.uuid4().hex[:8]}"
    run_dir = ROOT / "runs" / project / experiment
    cmd = ["bash", str(ROOT / "scripts" / "submit.sh"), "--", "aspo-train", "--config-name", "quickstart_tiny",
           "hardware=cpu", f"trainer.project_name={project}", f"trainer.experiment_name={experiment}",
           "trainer.total_training_steps=4", "trainer.save_freq=1", "trainer.test_freq=-1",
           "data.train_max_samples=32", "aspo.max_restarts=1"]
    log = tmp_path_factory.mktemp("lost_node") / "job.log"  # kept by pytest after the cluster is gone
    killed: list[int] = []
    try:
        with log.open("w") as out:
            job = subprocess.Popen(cmd, env=cluster.env(), stdout=out, stderr=subprocess.STDOUT, text=True)
            tracker = run_dir / "latest_checkpointed_iteration.txt"
            deadline = time.time() + 400
            while time.time() < deadline and job.poll() is None:
                if tracker.exists() and tracker.read_text().strip() not in ("", "0"):
                    break
                time.sleep(0.5)
            assert job.poll() is None, f"the job ended before its first checkpoint:\n{log.read_text()[-4000:]}"
            assert tracker.exists(), f"no checkpoint within 400 s:\n{log.read_text()[-4000:]}"
            procs = cluster.processes("worker")
            killed = [p.pid for p in procs]
            for p in procs:
                try:
                    p.kill()
                except psutil.NoSuchProcess:
                    pass
            psutil.wait_procs(procs, timeout=30)
            cluster.nodes["worker"].wait(timeout=30)
            agent = _free_ports(1)[0]
            with cluster.log.open("a") as launch:
                _start_node(cluster, "worker", [f"127.0.0.1:{cluster.port}", "--num-cpus=8", "--num-gpus=1",
                                                "--object-store-memory=200000000", f"--temp-dir={cluster.temp}",
                                                "--disable-usage-stats", f"--dashboard-agent-listen-port={agent}"],
                            cluster.env(RAY_BLOCK=1, RAY_HEAD_IP="127.0.0.1", RAY_WAIT_S=120), launch)
            job.wait(timeout=600)
        yield job.returncode, log.read_text(), run_dir, killed
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_lost_worker_node_restarts_from_the_last_checkpoint(lost_node_job):
    returncode, out, run_dir, killed = lost_node_job
    assert killed
    assert returncode == 0 and "succeeded" in out, out[-5000:]
    restarts = re.findall(r"\[aspo\] restart 1/1: (\w+)", out)
    assert len(restarts) == 1, out[-5000:]
    assert "restart 2/" not in out
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    steps = [r["step"] for r in records if any(k.startswith("actor/") for k in r["data"])]
    assert steps == [1, 2, 3, 4], steps  # each step logged once: the lost step was redone, not duplicated
    assert (run_dir / "latest_checkpointed_iteration.txt").read_text().strip() == "4"
