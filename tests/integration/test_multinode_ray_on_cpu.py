"""Multi-node launch as far as one machine allows: a Ray head and a worker started by our scripts
(two raylets on this host, own ports and temp dir), a command submitted through
``scripts/submit.sh`` both as a Ray job and as an attached driver, both seeing the two nodes; plus
dry runs of the SLURM script.

The cluster is isolated: its own --temp-dir (so ``ray.init()`` elsewhere on this machine never
finds it) and free ports; teardown signals only the process groups this test started.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROBE = ("import ray, time; ray.init(logging_level='ERROR'); t = time.time()\n"
         "while sum(n['Alive'] for n in ray.nodes()) < 2 and time.time() - t < 60: time.sleep(0.5)\n"
         "print('ASPO_NODES', sum(n['Alive'] for n in ray.nodes()), "
         "sorted({n['NodeManagerPort'] for n in ray.nodes() if n['Alive']}).__len__())")


def _free_ports(k: int) -> list[int]:
    socks = [socket.socket() for _ in range(k)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


# One token for this test cluster and its clients (never the user's ~/.ray/auth_token).
TOKEN = os.urandom(16).hex()


def _env(**extra) -> dict:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": TOKEN,
           **{k: str(v) for k, v in extra.items()}}
    env.pop("RAY_ADDRESS", None)
    return env


@pytest.fixture(scope="module")
def cluster():
    if shutil.which("ray", path=str(Path(sys.executable).parent)) is None:
        pytest.skip("ray CLI not installed next to this python")
    temp = tempfile.mkdtemp(prefix="aspo-ray-", dir="/tmp")  # short: Ray's unix sockets live here
    port, dash, agent_h, agent_w, client = _free_ports(5)
    common = ["--num-cpus=1", "--object-store-memory=100000000", f"--temp-dir={temp}", "--disable-usage-stats"]
    env = _env(RAY_PORT=port, RAY_DASHBOARD_PORT=dash, RAY_BLOCK=1, RAY_HEAD_IP="127.0.0.1")
    procs = []
    log = Path(temp) / "launch.log"
    with log.open("w") as out:
        procs.append(subprocess.Popen(
            ["bash", str(ROOT / "scripts" / "ray_start_head.sh"), *common, f"--dashboard-agent-listen-port={agent_h}",
             f"--ray-client-server-port={client}"], env=env, stdout=out, stderr=out, start_new_session=True))
        procs.append(subprocess.Popen(
            ["bash", str(ROOT / "scripts" / "ray_start_worker.sh"), f"127.0.0.1:{port}", *common,
             f"--dashboard-agent-listen-port={agent_w}"], env={**env, "RAY_WAIT_S": "120"}, stdout=out, stderr=out,
            start_new_session=True))
    try:
        yield {"port": port, "dash": dash, "temp": temp, "log": log}
    finally:
        for p in procs:  # our own process groups only
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
        time.sleep(1)
        left = subprocess.run(["pgrep", "-f", temp], capture_output=True, text=True).stdout.split()
        for pid in left:  # processes of this cluster that left our groups (started by us, named by temp dir)
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(temp, ignore_errors=True)


def _wait_for_dashboard(cluster, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", cluster["dash"]), timeout=1).close()
            return
        except OSError:
            time.sleep(1)
    pytest.fail(f"Ray dashboard never came up; launch log:\n{cluster['log'].read_text()[-3000:]}")


def test_job_submit_and_driver_see_head_and_worker(cluster):
    _wait_for_dashboard(cluster)
    env = _env(RAY_HEAD_ADDRESS="127.0.0.1", RAY_PORT=cluster["port"], RAY_DASHBOARD_PORT=cluster["dash"])
    job = subprocess.run(["bash", str(ROOT / "scripts" / "submit.sh"), "--", "python", "-c", PROBE],
                         env=env, capture_output=True, text=True, timeout=240)
    assert job.returncode == 0, job.stdout[-3000:] + job.stderr[-3000:]
    assert re.search(r"ASPO_NODES 2 2", job.stdout), job.stdout[-3000:]
    assert "succeeded" in job.stdout + job.stderr

    driver = subprocess.run(["bash", str(ROOT / "scripts" / "submit.sh"), "--", "python", "-c", PROBE],
                            env={**env, "ASPO_SUBMIT": "driver"}, capture_output=True, text=True, timeout=240)
    assert driver.returncode == 0, driver.stderr[-3000:]
    assert "ASPO_NODES 2 2" in driver.stdout


def test_submit_dry_run_and_errors():
    env = _env(DRY_RUN=1, RAY_HEAD_ADDRESS="10.1.2.3", NNODES=2)
    dry = subprocess.run(["bash", str(ROOT / "scripts" / "submit.sh"), "aspo_math_1p5b", "trainer.total_training_steps=7"],
                         env=env, capture_output=True, text=True, timeout=30)
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.startswith("+ ray job submit --address=http://10.1.2.3:8265 -- bash -c ")
    assert "NNODES=2\\ bash\\ recipes/aspo_math_1p5b.sh\\ trainer.total_training_steps=7" in dry.stdout
    bad = subprocess.run(["bash", str(ROOT / "scripts" / "submit.sh"), "no_such_recipe"], env=env,
                         capture_output=True, text=True, timeout=30)
    assert bad.returncode == 2 and "unknown recipe 'no_such_recipe'; available: " in bad.stderr


def test_sbatch_dry_run_prints_the_plan():
    env = _env(DRY_RUN=1, DRY_RUN_NODES="gpu01 gpu02 gpu03", GPUS_PER_NODE=4)
    env.pop("SLURM_JOB_NODELIST", None)
    done = subprocess.run(["bash", str(ROOT / "scripts" / "slurm" / "aspo.sbatch"), "grpo_math_1p5b", "trainer.save_freq=5"],
                          env=env, capture_output=True, text=True, timeout=30, cwd="/")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 4
    assert lines[0].startswith("+ srun --nodes=1 --ntasks=1 -w gpu01 env RAY_BLOCK=1") and "ray_start_head.sh --num-gpus=4" in lines[0]
    assert all("-w gpu0%d" % i in lines[i - 1] and "ray_start_worker.sh" in lines[i - 1] for i in (2, 3))
    assert "NNODES=3 bash recipes/grpo_math_1p5b.sh trainer.n_gpus_per_node=4 trainer.save_freq=5" in lines[3]
    head = (ROOT / "scripts" / "slurm" / "aspo.sbatch").read_text()
    assert "#SBATCH --gpus-per-node=8" in head and "verl==0.9.1" in head
    outside = subprocess.run(["bash", str(ROOT / "scripts" / "slurm" / "aspo.sbatch"), "grpo_math_1p5b"],
                             env={k: v for k, v in env.items() if k != "DRY_RUN"}, capture_output=True, text=True, timeout=30)
    assert outside.returncode == 2 and "not inside a SLURM allocation" in outside.stderr
