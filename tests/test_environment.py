"""The environment the set-up builds: the CPU build of torch, no CUDA packages, the declared lower bounds true."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from check_no_cuda import CUDA_PACKAGE, cuda_packages  # noqa: E402


def test_no_cuda_package_is_installed():
    assert cuda_packages() == [], "the set-up must install the CPU build of torch (tools/install_torch.sh)"


def test_the_cuda_name_pattern_catches_what_a_cuda_torch_pulls():
    pulled = ["nvidia-cublas-cu12", "nvidia_cudnn_cu12", "triton", "cuda-bindings", "nvidia-nccl-cu12"]
    kept = ["torch", "numpy", "faiss-cpu", "sympy", "typer"]
    assert all(CUDA_PACKAGE.match(n) for n in pulled) and not any(CUDA_PACKAGE.match(n) for n in kept)


def test_torch_is_a_cpu_build():
    import torch

    assert torch.version.cuda is None, f"torch {torch.__version__} is built for CUDA {torch.version.cuda}"


def _lower_bounds() -> dict[str, str]:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    bounds = {}
    for dep in deps:
        m = re.fullmatch(r"([A-Za-z0-9_.-]+)\s*>=\s*([0-9.]+)", dep.strip())
        assert m, f"declare every dependency as NAME>=VERSION: {dep!r}"
        bounds[m[1]] = m[2]
    return bounds


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", text.split("+")[0])[:3])


@pytest.mark.parametrize("name", sorted(_lower_bounds()))
def test_declared_lower_bound_is_installed_or_above(name):
    """The bounds are the versions this project is tested with (raised to them), not wishes."""
    assert _version(metadata.version(name)) >= _version(_lower_bounds()[name])


def test_check_no_cuda_script_passes_here():
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "check_no_cuda.py")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
