"""scripts/ray_env.sh and the launch scripts without a cluster: the node address is never a
loopback one, the head creates the auth token (0600) where workers and clients look for it, those
stop with the fix when there is none, and aspo.sbatch fails fast when a node's `ray start` fails.

Commands that would reach the network or Ray are stand-ins on PATH (hostname, ip, getent, srun,
scontrol, and RAY_BIN), so this runs in seconds.
"""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "scripts"


def _stub(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text("#!/usr/bin/env bash\n" + body)
    path.chmod(0o755)


def _hosts(bin_dir: Path, *, route_src: str | None, hostname_i: str, resolves_to: str) -> None:
    """A host whose /etc/hosts maps its name to ``resolves_to`` (127.0.1.1 on Debian-likes)."""
    route = f'echo "1.0.0.0 via 10.9.9.1 dev eth0 src {route_src} uid 0"' if route_src else "exit 2"
    _stub(bin_dir, "ip", route + "\n")
    _stub(bin_dir, "hostname", f'case "${{1:-}}" in -I) echo "{hostname_i}" ;; --ip-address|-i) echo "{resolves_to}" ;; '
                               '*) echo node1 ;; esac\n')
    _stub(bin_dir, "getent", f'echo "{resolves_to}      STREAM node1"\n')


def _env(tmp_path: Path, bin_dir: Path | None = None, **extra) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("RAY_", "ASPO_", "SLURM_")) and k not in ("DRY_RUN",)}
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env["HOME"] = str(home)
    if bin_dir is not None:
        env["PATH"] = f"{bin_dir}:{env['PATH']}"
    env.update({k: str(v) for k, v in extra.items()})
    return env


def _bash(script: str, env: dict, *args: str, timeout: float = 30, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", script, "bash", *args], env=env, capture_output=True, text=True,
                          timeout=timeout, cwd=cwd)


NODE_IP = f"set -euo pipefail; source {SCRIPTS}/ray_env.sh; aspo_node_ip"


@pytest.fixture
def bin_dir(tmp_path):
    d = tmp_path / "bin"
    d.mkdir()
    return d


def test_node_ip_skips_loopback_addresses(tmp_path, bin_dir):
    # What `hostname --ip-address` (the old aspo.sbatch) returns here would be 127.0.1.1.
    _hosts(bin_dir, route_src=None, hostname_i="127.0.1.1 10.1.2.3 fd00::2", resolves_to="127.0.1.1")
    out = _bash(NODE_IP, _env(tmp_path, bin_dir))
    assert out.returncode == 0 and out.stdout.strip() == "10.1.2.3", out.stderr


def test_node_ip_prefers_the_default_route_and_honours_the_override(tmp_path, bin_dir):
    _hosts(bin_dir, route_src="10.7.7.7", hostname_i="172.17.0.1 10.7.7.7", resolves_to="127.0.1.1")
    assert _bash(NODE_IP, _env(tmp_path, bin_dir)).stdout.strip() == "10.7.7.7"
    assert _bash(NODE_IP, _env(tmp_path, bin_dir, ASPO_NODE_IP="192.168.5.5")).stdout.strip() == "192.168.5.5"


def test_node_ip_fails_with_the_fix_when_only_loopback_exists(tmp_path, bin_dir):
    _hosts(bin_dir, route_src="127.0.0.1", hostname_i="127.0.0.1 ::1", resolves_to="127.0.1.1")
    out = _bash(NODE_IP, _env(tmp_path, bin_dir))
    assert out.returncode == 1 and out.stdout == ""
    assert "no non-loopback IPv4 address" in out.stderr and "ASPO_NODE_IP=" in out.stderr


def test_head_advertises_the_non_loopback_address(tmp_path, bin_dir):
    _hosts(bin_dir, route_src=None, hostname_i="127.0.1.1 10.1.2.3", resolves_to="127.0.1.1")
    out = subprocess.run(["bash", str(SCRIPTS / "ray_start_head.sh")], env=_env(tmp_path, bin_dir, DRY_RUN=1),
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert "--node-ip-address=10.1.2.3" in out.stdout and "127." not in out.stdout


def test_head_creates_a_private_token_once(tmp_path):
    env = _env(tmp_path)
    script = f"set -euo pipefail; source {SCRIPTS}/ray_env.sh; aspo_ensure_token"
    first = _bash(script, env)
    token_file = tmp_path / "home" / ".ray" / "auth_token"
    assert first.returncode == 0 and f"created {token_file} (mode 0600)" in first.stderr, first.stderr
    token = token_file.read_text()
    assert len(token) == 64 and int(token, 16) >= 0  # 256 bits of hex, like `ray get-auth-token --generate`
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    second = _bash(script, env)
    assert second.returncode == 0 and token_file.read_text() == token and f"auth token: {token_file}" in second.stderr

    shared = tmp_path / "shared" / "token"
    out = _bash(script, {**env, "RAY_AUTH_TOKEN_PATH": str(shared)})
    assert out.returncode == 0 and shared.read_text() != token and stat.S_IMODE(shared.stat().st_mode) == 0o600

    for i, extra in enumerate(({"RAY_AUTH_TOKEN": "abc"}, {"RAY_AUTH_MODE": "disabled"})):
        other = tmp_path / f"other{i}"
        other.mkdir()
        assert _bash(script, _env(other, **extra)).returncode == 0
        assert not (other / "home" / ".ray").exists()


def _listening_port():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


def test_worker_and_submit_stop_without_a_token(tmp_path):
    sock = _listening_port()  # stands in for the head, so the worker gets past its wait
    try:
        env = _env(tmp_path, RAY_BIN="false")
        port = sock.getsockname()[1]
        worker = subprocess.run(["bash", str(SCRIPTS / "ray_start_worker.sh"), f"127.0.0.1:{port}"], env=env,
                                capture_output=True, text=True, timeout=30)
    finally:
        sock.close()
    assert worker.returncode == 1
    assert "ERROR: no Ray auth token" in worker.stderr and str(tmp_path / "home" / ".ray" / "auth_token") in worker.stderr
    submit = subprocess.run(["bash", str(SCRIPTS / "submit.sh"), "--", "true"], env=env, capture_output=True,
                            text=True, timeout=30)
    assert submit.returncode == 1 and "ERROR: no Ray auth token" in submit.stderr

    # With the head's token in the shared $HOME they go on (to RAY_BIN, here `false`).
    token = tmp_path / "home" / ".ray" / "auth_token"
    token.parent.mkdir()
    token.write_text("0" * 64)
    submit = subprocess.run(["bash", str(SCRIPTS / "submit.sh"), "--", "true"], env=env, capture_output=True,
                            text=True, timeout=30)
    assert submit.returncode == 1 and "auth token" not in submit.stderr


# ---- aspo.sbatch under stand-in SLURM commands ------------------------------------------------


def _fake_slurm(bin_dir: Path, log: Path, head_fails: bool) -> None:
    # srun [--opt=... | -w node]... CMD...: run CMD here; scontrol show hostnames a,b: one per line.
    _stub(bin_dir, "srun", 'while [ $# -gt 0 ]; do case "$1" in -w) shift 2 ;; -*) shift ;; *) break ;; esac; done\n'
                           'exec "$@"\n')
    _stub(bin_dir, "scontrol", 'echo "$3" | tr , "\\n"\n')
    # RAY_BIN: records its arguments and whether the token existed when it ran.
    fail = ('echo "ray.exceptions.AuthenticationError: Token authentication is enabled but no authentication '
            'token was found" >&2; exit 1') if head_fails else "sleep 300"
    _stub(bin_dir, "fake-ray", f'echo "$* token=$([ -s "$HOME/.ray/auth_token" ] && echo yes || echo no)" >> {log}\n'
                               f'case "$*" in "start --head"*) {fail} ;; *) sleep 300 ;; esac\n')


@pytest.mark.parametrize("nodes", ["gpu01", "gpu01,gpu02"])
def test_sbatch_fails_fast_when_the_head_does_not_start(tmp_path, bin_dir, nodes):
    log = tmp_path / "ray.log"
    _fake_slurm(bin_dir, log, head_fails=True)
    _hosts(bin_dir, route_src=None, hostname_i="127.0.1.1 10.1.2.3", resolves_to="127.0.1.1")
    env = _env(tmp_path, bin_dir, SLURM_JOB_NODELIST=nodes, RAY_BIN=bin_dir / "fake-ray", RAY_WAIT_S=600,
               GPUS_PER_NODE=1, RAY_PORT=_free_port())
    start = time.time()
    proc = subprocess.Popen(["bash", str(SCRIPTS / "slurm" / "aspo.sbatch"), "grpo_math_1p5b"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=60)
    finally:
        try:  # the script's own steps, if any outlived it
            os.killpg(proc.pid, 9)
        except ProcessLookupError:
            pass
    took = time.time() - start
    assert proc.returncode == 1, err
    assert "AuthenticationError" in err and "the Ray step on gpu01 exited (rc=1) before the cluster was up" in err
    assert took < 30, f"took {took:.0f}s"
    head_call = log.read_text().splitlines()[0]
    assert head_call.startswith("start --head --node-ip-address=10.1.2.3 ") and "--num-gpus=1" in head_call
    assert head_call.endswith("token=yes")  # the sbatch made the token before any node started
    assert f"Ray head gpu01 (10.1.2.3:{env['RAY_PORT']})" in err and "127.0.1.1" not in err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_sbatch_head_address_override_and_dry_run(tmp_path, bin_dir):
    _hosts(bin_dir, route_src=None, hostname_i="127.0.1.1", resolves_to="127.0.1.1")
    env = _env(tmp_path, bin_dir, DRY_RUN=1, DRY_RUN_NODES="a b", ASPO_HEAD_IP="10.5.5.5")
    out = subprocess.run(["bash", str(SCRIPTS / "slurm" / "aspo.sbatch"), "aspo_math_1p5b"], env=env,
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert "RAY_HEAD_IP=10.5.5.5" in lines[0] and "ray_start_worker.sh 10.5.5.5:6379" in lines[1]
    assert "RAY_ADDRESS=10.5.5.5:6379 NNODES=2 bash recipes/aspo_math_1p5b.sh" in lines[2]
    assert "auth token: would create" in out.stderr
    assert not (tmp_path / "home" / ".ray").exists()  # a dry run writes nothing
