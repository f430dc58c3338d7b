"""Shared fixtures: small synthetic datasets imported through the CLI, the real SIFT data, and the
two ways of running the program: ``run_cli`` (in this process, as the console script does: the same
argument parsing, error edge and exit codes) and ``run_process`` (a real ``python -m vecspread``, for
what only a process shows: signals, pipes, standard input, start-up imports, the environment).

Pipeline artifacts are built once per session and are read-only for the tests that use them; a test that
needs to modify a file copies it first.
"""

from __future__ import annotations

import glob
import io
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from vecspread.io.formats import write_vectors
from vecspread.stages.train import fit_method  # noqa: F401  (the tests' way to fit a method in memory)

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
REPO_ROOT = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------------------------
# running the program


def run_cli(*args: object, cwd: str | os.PathLike | None = None, stdin: str | bytes | None = None
            ) -> tuple[int, str, str]:
    """Run ``vecspread ARGS`` in this process, as the console script does; returns (exit code, stdout, stderr).

    Everything written to file descriptors 1 and 2 is captured, by Python or by a C library (faiss,
    HDF5), so a one-line-error check sees what a terminal would. ``stdin``: what standard input holds
    (default: nothing). The program's thread settings stay set after it returns.
    """
    from vecspread.cli import app
    from vecspread.cli_edge import run_main

    data = stdin.encode() if isinstance(stdin, str) else (stdin or b"")
    argv, cwd_before, streams = sys.argv, os.getcwd(), (sys.stdin, sys.stdout, sys.stderr)
    code: object = 0
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        saved = os.dup(1), os.dup(2)
        sys.stdout.flush(), sys.stderr.flush()
        os.dup2(out.fileno(), 1)
        os.dup2(err.fileno(), 2)
        sys.argv = ["vecspread", *map(str, args)]
        sys.stdin = io.TextIOWrapper(io.BytesIO(data))
        sys.stdout = io.TextIOWrapper(os.fdopen(os.dup(1), "wb"), line_buffering=True)
        sys.stderr = io.TextIOWrapper(os.fdopen(os.dup(2), "wb"), line_buffering=True)
        try:
            if cwd is not None:
                os.chdir(cwd)
            try:
                run_main(app, hard_exit=False)
            except SystemExit as e:
                code = e.code
        finally:
            sys.stdout.close(), sys.stderr.close()
            sys.argv, (sys.stdin, sys.stdout, sys.stderr) = argv, streams
            os.dup2(saved[0], 1), os.dup2(saved[1], 2)
            os.close(saved[0]), os.close(saved[1])
            os.chdir(cwd_before)
        out.seek(0), err.seek(0)
        texts = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    return (code if isinstance(code, int) else 0 if code is None else 1), *texts


def run_process(*args: object, cwd: str | os.PathLike | None = None, timeout: float = 120) -> tuple[int, str, str]:
    """Run ``python -m vecspread ARGS`` as a real process and return (returncode, stdout, stderr)."""
    proc = subprocess.run(cli_command(*args), capture_output=True, text=True, cwd=cwd or REPO_ROOT,
                          env=cli_env(), timeout=timeout, stdin=subprocess.DEVNULL)
    return proc.returncode, proc.stdout, proc.stderr


def cli_ok(*args: object) -> str:
    """Run the program, fail the test with its stderr unless it exits 0; returns stdout."""
    rc, out, err = run_cli(*args)
    assert rc == 0, f"vecspread {' '.join(map(str, args))} exited {rc}:\n{err}"
    return out


def assert_one_line_error(rc: int, stderr: str, code: int = 2) -> str:
    """The CLI error contract: exit ``code``, exactly one stderr line 'vecspread: error: ...', no traceback."""
    lines = stderr.splitlines()
    assert rc == code, f"exit code {rc}, expected {code}; stderr:\n{stderr}"
    assert "Traceback" not in stderr, stderr
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{stderr}"
    assert lines[0].startswith("vecspread: error:"), stderr
    return lines[0]


def partial_files(directory: str | os.PathLike) -> list[str]:
    """Temporary files of interrupted or failed writes left in ``directory``."""
    return glob.glob(os.path.join(str(directory), ".*.partial")) + glob.glob(os.path.join(str(directory), "*.partial"))


#: the directory of this Python's console scripts: `vecspread` in shell pipelines and Makefiles
SCRIPTS_DIR = Path(sys.executable).parent


def cli_command(*args: object) -> list[str]:
    """The argv that :func:`run_cli` runs: ``python -m vecspread ARGS``."""
    return [sys.executable, "-m", "vecspread", *map(str, args)]


def cli_env(**extra: str) -> dict[str, str]:
    """The environment of :func:`run_cli` (COLUMNS unset), with this Python's scripts directory first on
    PATH (so that `vecspread` resolves in shell pipelines and Makefiles), plus ``extra``."""
    env = dict(os.environ)
    env.pop("COLUMNS", None)
    env["PATH"] = f"{SCRIPTS_DIR}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


def run_cli_with(
    *args: object, env: dict[str, str] | None = None, stdin: str | None = None,
    cwd: str | os.PathLike | None = None, timeout: float = 120,
) -> tuple[int, str, str]:
    """:func:`run_cli` with a chosen environment (default :func:`cli_env`) and standard input: ``stdin``
    text is piped in; None gives /dev/null (never the terminal of the test run)."""
    proc = subprocess.run(
        cli_command(*args), capture_output=True, text=True, cwd=cwd or REPO_ROOT, env=env or cli_env(),
        timeout=timeout, input=stdin, stdin=subprocess.DEVNULL if stdin is None else None,
    )
    return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture(name="run_cli")
def run_cli_fixture():
    """The :func:`run_cli` helper as a fixture."""
    return run_cli


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path to ../shared/data (real SIFT files); skips when absent."""
    if not (SHARED_DATA / "siftsmall" / "siftsmall_base.fvecs").is_file():
        pytest.skip("needs ../shared/data (real SIFT files)")
    return SHARED_DATA


# --------------------------------------------------------------------------------------------
# synthetic data


def l2_distances(xq: np.ndarray, xb: np.ndarray) -> np.ndarray:
    """(nq, n) true L2 distances in float64, computed directly (no norm expansion)."""
    xq = np.asarray(xq, np.float64)
    xb = np.asarray(xb, np.float64)
    return np.sqrt(((xq[:, None, :] - xb[None, :, :]) ** 2).sum(-1))


def brute_force_knn(xq: np.ndarray, xb: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact L2 k-NN ordered by (distance, id): D (nq, k) float64, I (nq, k) int64."""
    D = l2_distances(xq, xb)
    ids = np.broadcast_to(np.arange(xb.shape[0]), D.shape)
    order = np.lexsort((ids, D), axis=1)[:, :k]
    return np.take_along_axis(D, order, 1), order.astype(np.int64)


def mips_data(n: int, d: int, seed: int) -> np.ndarray:
    """(n, d) float32 Gaussian directions (MIPS test data: norms vary) with log-uniform norms in [0.1, 10]."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return (x * 10 ** rng.uniform(-1, 1, (n, 1))).astype(np.float32)


@dataclass(frozen=True)
class Synthetic:
    """A small dataset as raw arrays and as files: vector files plus the imported HDF5 dataset."""

    dir: Path
    xb: np.ndarray
    xq: np.ndarray
    base: Path
    queries: Path
    h5: Path


D_SYN = 32
N_SYN = 600
NQ_SYN = 40


def make_synthetic(directory: Path, seed: int, n: int = N_SYN, nq: int = NQ_SYN, d: int = D_SYN) -> Synthetic:
    """Clustered integer-valued float vectors (so exact distances are exactly representable and some
    tie), written as .fvecs and imported through the CLI."""
    rng = np.random.default_rng(seed)
    centres = rng.integers(0, 40, size=(8, d))
    xb = (centres[rng.integers(0, 8, n)] + rng.integers(-6, 7, size=(n, d))).astype(np.float32)
    xq = (centres[rng.integers(0, 8, nq)] + rng.integers(-6, 7, size=(nq, d))).astype(np.float32)
    directory.mkdir(parents=True, exist_ok=True)
    base, queries, h5 = directory / "base.fvecs", directory / "query.fvecs", directory / "data.h5"
    write_vectors(str(base), xb)
    write_vectors(str(queries), xq)
    cli_ok("import", base, "--queries", queries, "-o", h5)
    return Synthetic(directory, xb, xq, base, queries, h5)


@pytest.fixture(scope="session")
def syn(tmp_path_factory) -> Synthetic:
    """600 x 32 database, 40 queries (dataset A)."""
    return make_synthetic(tmp_path_factory.mktemp("synA"), seed=1)


@pytest.fixture(scope="session")
def syn_other(tmp_path_factory) -> Synthetic:
    """Another dataset of the same shape with different vectors (dataset B), for lineage checks."""
    return make_synthetic(tmp_path_factory.mktemp("synB"), seed=2)


@dataclass(frozen=True)
class Pipeline:
    """Artifacts of one run of every stage on ``syn`` (read-only: copy before modifying)."""

    data: Synthetic
    gt: Path
    pca24: Path
    rot32: Path
    identity: Path
    sign_codes: Path
    lattice_codes: Path
    sign_results: Path
    lattice_results: Path


@pytest.fixture(scope="session")
def pipeline(syn, tmp_path_factory) -> Pipeline:
    d = tmp_path_factory.mktemp("pipeline")
    p = Pipeline(
        data=syn, gt=d / "gt.h5", pca24=d / "pca24.h5", rot32=d / "rot32.h5", identity=d / "identity.h5",
        sign_codes=d / "sign.codes.h5", lattice_codes=d / "lattice.codes.h5",
        sign_results=d / "sign.res.h5", lattice_results=d / "lattice.res.h5",
    )
    cli_ok("gt", syn.h5, "-k", 100, "-o", p.gt, "--block-size", 64)  # k > block size
    cli_ok("train", syn.h5, "--method", "pca", "--dout", 24, "-o", p.pca24)
    cli_ok("train", syn.h5, "--method", "rotation", "--dout", 32, "--seed", 7, "-o", p.rot32)
    cli_ok("train", syn.h5, "--method", "identity", "-o", p.identity)
    cli_ok("encode", p.rot32, syn.h5, "--codec", "sign", "-o", p.sign_codes, "--block-size", 100)
    cli_ok("encode", p.pca24, syn.h5, "--codec", "lattice", "--bits", 64, "-o", p.lattice_codes)
    cli_ok("search", p.sign_codes, syn.h5, "-k", 100, "-o", p.sign_results, "--block-size", 70)
    cli_ok("search", p.lattice_codes, syn.h5, "-k", 100, "-o", p.lattice_results, "--block-size", 70)
    return p


# --------------------------------------------------------------------------------------------
# progress


class ProgressRecorder:
    """A progress object: lines plus the units of work started ([description, total, done] each); can
    simulate a run killed after an epoch's line."""

    def __init__(self, stop_after_epoch: int | None = None) -> None:
        self.lines: list[str] = []
        self.tasks: list[list] = []
        self.stop_after_epoch = stop_after_epoch

    def log(self, line: str) -> None:
        self.lines.append(line)
        if self.stop_after_epoch is not None and line.startswith(f"epoch {self.stop_after_epoch}/"):
            raise KeyboardInterrupt  # simulates a run killed right after that epoch

    def start(self, total: int, description: str = "") -> None:
        self.tasks.append([description, total, 0])

    def advance(self, n: int = 1) -> None:
        self.tasks[-1][2] += n

    def finish(self) -> None:
        pass

    @property
    def total(self) -> int:
        return sum(t[1] for t in self.tasks if " epoch " in t[0] and "mining" not in t[0])

    @property
    def done(self) -> int:
        return sum(t[2] for t in self.tasks if " epoch " in t[0] and "mining" not in t[0])



def checkpoint_members(path) -> set[str]:
    """The datasets of a checkpoint file, checking that it holds nothing else: numeric datasets only, no
    attributes on them or its groups, and at the root only its kind and fingerprints."""
    import h5py

    from vecspread.io.fingerprints import RECORD_ATTRS

    found: set[str] = set()

    def visit(name, obj):
        assert not obj.attrs.keys(), name
        if isinstance(obj, h5py.Dataset):
            assert obj.dtype.kind in "iuf", (name, obj.dtype)
            found.add(name)

    with h5py.File(path, "r") as f:
        assert set(f.attrs) == {"vecspread_kind", *RECORD_ATTRS} and f.attrs["vecspread_kind"] == "checkpoint"
        f.visititems(visit)
    return found


def weights_equal(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    """Two ``get_weights()`` dicts with the same names and bit-identical arrays."""
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="session")
def nonnegative_clusters() -> np.ndarray:
    """(1200, 16) float32: 20 Gaussian clusters of non-negative SIFT-like vectors."""
    rng = np.random.default_rng(0)
    centres = rng.uniform(0, 100, size=(20, 16))
    x = centres[rng.integers(20, size=1200)] + 15 * rng.normal(size=(1200, 16))
    return np.abs(x).astype(np.float32)
