"""The Docker images install through scripts/setup_env.sh, the README's path (no engine here to
build them): one RUN calls it, nothing else pip-installs, base images satisfy its Python check, the
GPU build-time nvidia-smi stand-in satisfies its GPU detection, and the build context skips .venv."""

from __future__ import annotations

import json
import os
import sys
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILES = {"gpu": ROOT / "docker" / "Dockerfile.gpu", "cpu": ROOT / "docker" / "Dockerfile.cpu"}


def _instructions(path: Path) -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", path.read_text())  # join continuation lines
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            op, _, rest = line.partition(" ")
            out.append((op.upper(), rest.strip()))
    return out


@pytest.mark.parametrize("kind", sorted(DOCKERFILES))
def test_dockerfile_installs_through_setup_env(kind):
    ins = _instructions(DOCKERFILES[kind])
    runs = [arg for op, arg in ins if op == "RUN"]
    setup = [r for r in runs if "scripts/setup_env.sh" in r]
    assert len(setup) == 1, runs
    assert not [r for r in runs if re.search(r"\bpip3? install\b|\buv pip\b|\bconda install\b", r)], \
        "install Python packages only through scripts/setup_env.sh"
    ops = [op for op, _ in ins]
    assert ops.index("COPY") < next(i for i, (op, arg) in enumerate(ins) if op == "RUN" and "setup_env" in arg)
    assert "verl.__version__ == '0.9.1'" in setup[0]
    base = next(arg for op, arg in ins if op == "FROM")
    if kind == "gpu":
        assert base.startswith("nvidia/cuda:") and "ubuntu24.04" in base  # python3 3.12 >= 3.11
        assert "import verl, vllm" in setup[0]
    else:
        assert base.startswith("python:3.11")
    ignore = Path(f"{DOCKERFILES[kind]}.dockerignore").read_text().split()
    assert {".venv/", ".git/", "runs/", "data/"} <= set(ignore)


def test_readme_commands_use_the_same_setup_script():
    for script in ("quickstart.sh", "test.sh"):
        assert "source scripts/setup_env.sh" in (ROOT / "scripts" / script).read_text()


def test_gpu_build_stand_in_satisfies_setup_env_gpu_detection(tmp_path):
    setup = (ROOT / "scripts" / "setup_env.sh").read_text()
    detection = re.search(r"if (command -v nvidia-smi.*nvidia-smi -L[^;]*); then", setup)
    assert detection, "setup_env.sh's GPU detection changed: update docker/Dockerfile.gpu's nvidia-smi stand-in"
    run = next(arg for op, arg in _instructions(DOCKERFILES["gpu"]) if op == "RUN" and "setup_env" in arg)
    shim_cmd = re.search(r"printf '(.*?)' > /usr/local/bin/nvidia-smi", run).group(1)
    shim = tmp_path / "nvidia-smi"
    subprocess.run(["bash", "-c", f"printf '{shim_cmd}' > {shim}"], check=True)
    shim.chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    probe = subprocess.run(["bash", "-c", f"if {detection.group(1)}; then echo gpu; else echo cpu; fi"],
                           env=env, capture_output=True, text=True, check=True)
    assert probe.stdout.strip() == "gpu"


def _gpu_torch_pin() -> str:
    import tomllib

    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["gpu"]
    return next(req.split("==")[1] for req in extra if req.startswith("torch=="))


def test_gpu_image_cuda_major_matches_the_gpu_torch(tmp_path):
    """The image's CUDA must be the one the pinned torch wheel was built for (flash-attn's build checks it).

    Reads the torch wheel's metadata from the package index (pip resolves it without downloading the
    wheel), so a new pin is checked against what PyPI really serves."""
    pin = _gpu_torch_pin()
    report = tmp_path / "report.json"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--no-deps", "--ignore-installed", "--quiet",
         "--only-binary=:all:", "--platform", "manylinux_2_28_x86_64", "--python-version", "3.12",
         "--target", str(tmp_path / "t"), "--report", str(report), f"torch=={pin}"],
        capture_output=True, text=True, timeout=300,
    )
    if proc.returncode != 0 and re.search(r"Could not fetch|NewConnectionError|Network is unreachable|ProxyError", proc.stderr):
        pytest.skip(f"package index unreachable: {proc.stderr[-300:]}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    requires = json.loads(report.read_text())["install"][0]["metadata"].get("requires_dist", [])
    majors = {m for req in requires for m in re.findall(r"(?:-cu|cuda-toolkit\S*==)(\d+)", req)}
    assert len(majors) == 1, requires
    base = next(arg for op, arg in _instructions(DOCKERFILES["gpu"]) if op == "FROM")
    image_major = re.match(r"nvidia/cuda:(\d+)\.", base).group(1)
    assert image_major == majors.pop(), f"{base} vs torch=={pin} built for CUDA {requires}"
