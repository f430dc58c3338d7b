"""Hardening, through the program: a matrix of bad inputs (the one-line error contract), atomic
outputs under SIGKILL, checkpoint resume after SIGKILL, no pickles anywhere in an artifact, and seeded
determinism of train and encode.

Commands run in this process (``run``: everything written to stdout and stderr is captured at the file
descriptor level, C libraries included) except those that are killed, which are real processes with
one BLAS/OpenMP thread (``ONE_THREAD``): a fixed thread count is what makes the catalyzer reproducible
bit for bit.
"""

from __future__ import annotations

import os
import pickle
import random
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import h5py
import numpy as np
import pytest

from conftest import assert_one_line_error, cli_command, cli_env, partial_files, run_cli
from vecspread.io.atomic import partial_path
from vecspread.io.fingerprints import of_file as content_fingerprint
from vecspread.io.owners import process_tag
from vecspread.io.formats import write_vectors
from vecspread.neural.checkpoint import read_checkpoint
from vecspread.scanners import search

ONE_THREAD = cli_env(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")


def run(*args: object, stdin: str | None = None, cwd: str | os.PathLike | None = None) -> tuple[int, str, str]:
    return run_cli(*args, stdin=stdin, cwd=cwd)


def run_all(commands: list[tuple]) -> list[tuple[int, str, str]]:
    """Run several independent commands, one after the other; results in the same order."""
    return [run(*args) for args in commands]


def ok(result: tuple[int, str, str], what: str = "") -> str:
    rc, out, err = result
    assert rc == 0, f"{what} exited {rc}:\n{err}"
    return out


def start(*args: object) -> subprocess.Popen:
    return subprocess.Popen(cli_command(*args), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL, env=ONE_THREAD)


def partial_name(target: Path) -> re.Pattern:
    """The documented name of a file being written to ``target``: .NAME.PID.MACHINE-NAMESPACE-START.partial."""
    return re.compile(rf"^\.{re.escape(target.name)}\.(\d+)\.[0-9a-f]{{12}}-\d+-\d+\.partial$")


def assert_complete_artifact(path: Path, kind: str) -> str:
    """``path`` opens, says it is a ``kind``, and its recorded fingerprint is its content's; returns it."""
    with h5py.File(path, "r") as f:
        assert f.attrs["vecspread_kind"] == kind, dict(f.attrs)
        for attr in ("vecspread_version", "created_by", "params", "inputs", "fingerprint"):
            assert attr in f.attrs, f"{path}: no {attr} attribute"
        recorded = str(f.attrs["fingerprint"])
        assert recorded == content_fingerprint(f), f"{path}: fingerprint does not match the content"
    return recorded


def group_arrays(path: Path, group: str) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    with h5py.File(path, "r") as f:
        f[group].visititems(lambda name, obj: out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return out


def assert_same_arrays(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert a and set(a) == set(b), (sorted(a), sorted(b))
    for name in a:
        assert a[name].dtype == b[name].dtype and a[name].shape == b[name].shape, name
        assert a[name].tobytes() == b[name].tobytes(), f"{name} differs"


def fingerprint_attr(path: Path) -> str:
    with h5py.File(path, "r") as f:
        return str(f.attrs["fingerprint"])


def write_h5(path: Path, distance: str = "euclidean", **sets: np.ndarray) -> Path:
    """An ann-benchmarks style file (no vecspread attributes) holding ``sets``."""
    with h5py.File(path, "w") as f:
        f.attrs["distance"] = distance
        for name, x in sets.items():
            f.create_dataset(name, data=x)
    return path


# ============================================================================================
# 1. the bad-input matrix: exit 2, one line naming the problem, no traceback, nothing left behind


@pytest.fixture(scope="module")
def bad_env(pipeline, syn_other, tmp_path_factory) -> dict[str, Path]:
    """Good artifacts to spoil: the session pipeline on dataset A, plus dataset B and its ground truth."""
    from vecspread.stages.groundtruth import compute_groundtruth

    d = tmp_path_factory.mktemp("bad-env")
    other_gt = d / "other-gt.h5"
    compute_groundtruth(str(syn_other.h5), str(other_gt), 10)
    return {
        "data": pipeline.data.h5, "base": pipeline.data.base, "queries": pipeline.data.queries,
        "gt": pipeline.gt, "model": pipeline.rot32, "pca24": pipeline.pca24, "identity": pipeline.identity,
        "codes": pipeline.sign_codes, "lcodes": pipeline.lattice_codes, "results": pipeline.sign_results,
        "other": syn_other.h5, "other_gt": other_gt,
    }


@dataclass(frozen=True)
class Bad:
    """One bad input: ``setup(tmp, names)`` builds files in tmp and adds their names; ``argv`` and
    ``needle`` are formatted with the names (plus {tmp} and {out})."""

    id: str
    argv: tuple[str, ...]
    needle: str
    setup: Callable[[Path, dict], None] | None = None
    out: str | None = "{out}"  # must not exist afterwards
    unchanged: str | None = None  # an input the command must leave byte for byte as it was
    stdin: str | None = None


# --- setups (cheap, in-process)


def _text(tmp, n):
    n["text"] = tmp / "notes.h5"
    n["text"].write_text("these are not vectors\n")


def _unreadable(tmp, n):
    n["locked"] = tmp / "locked.h5"
    shutil.copy(n["data"], n["locked"])
    n["locked"].chmod(0)


def _truncated(key):
    def setup(tmp, n):
        src = Path(n[key])
        n["cut"] = tmp / f"cut-{src.name}"
        data = src.read_bytes()
        n["cut"].write_bytes(data[: len(data) // 2])
    return setup


def _truncated_fvecs(tmp, n):
    n["cut"] = tmp / "cut.fvecs"
    data = Path(n["base"]).read_bytes()
    n["cut"].write_bytes(data[: len(data) - 10])


def _only_train(tmp, n):
    n["trainonly"] = write_h5(tmp / "train-only.hdf5", train=np.ones((20, 4), np.float32))


def _artifact_without_test(tmp, n):
    n["notest"] = tmp / "no-test.h5"
    shutil.copy(n["data"], n["notest"])
    with h5py.File(n["notest"], "a") as f:
        del f["test"]


def _ann16(tmp, n):
    rng = np.random.default_rng(9)
    n["ann16"] = write_h5(tmp / "ann16.hdf5", train=rng.standard_normal((50, 16)).astype(np.float32),
                          test=rng.standard_normal((3, 16)).astype(np.float32))


def _queries16(tmp, n):
    n["q16"] = tmp / "q16.fvecs"
    write_vectors(str(n["q16"]), np.ones((4, 16), np.float32))


def _learn8(tmp, n):
    rng = np.random.default_rng(3)
    n["learn8"] = write_h5(tmp / "learn8.hdf5", train=rng.standard_normal((50, 16)).astype(np.float32),
                           test=rng.standard_normal((3, 16)).astype(np.float32),
                           learn=rng.standard_normal((30, 8)).astype(np.float32))


def _swapped_transform(tmp, n):
    """Sign codes of the rotation model whose /transform was replaced by another model's (same shapes)."""
    n["swapped"] = tmp / "swapped.codes.h5"
    shutil.copy(n["codes"], n["swapped"])
    with h5py.File(n["swapped"], "a") as f, h5py.File(n["identity"], "r") as other:
        del f["transform"]
        other.copy(other["transform"], f, "transform")


def _groundtruth_ids_out_of_range(tmp, n):
    n["badgt"] = tmp / "gt.ivecs"
    ids = np.tile(np.arange(5, dtype=np.int32), (40, 1))
    ids[7, 2] = 600  # the base has 600 vectors: ids 0..599
    write_vectors(str(n["badgt"]), ids)


def _nan_train(tmp, n):
    x = np.random.default_rng(4).standard_normal((50, 8)).astype(np.float32)
    x[31, 2] = np.nan
    n["nan"] = write_h5(tmp / "nan.hdf5", train=x, test=np.ones((3, 8), np.float32))


def _inf_train_artifact(tmp, n):
    n["inf"] = tmp / "inf.h5"
    shutil.copy(n["data"], n["inf"])
    with h5py.File(n["inf"], "a") as f:
        f["train"][17, 3] = np.inf


def _inf_queries(tmp, n):
    xq = np.ones((6, 32), np.float32)
    xq[4, 0] = -np.inf
    n["infq"] = tmp / "infq.fvecs"
    write_vectors(str(n["infq"]), xq)


def _all_zero(tmp, n):
    n["zeros"] = write_h5(tmp / "zeros.hdf5", train=np.zeros((300, 32), np.float32),
                          test=np.zeros((5, 32), np.float32))


def _empty_train(tmp, n):
    n["empty"] = write_h5(tmp / "empty.hdf5", train=np.zeros((0, 8), np.float32), test=np.ones((3, 8), np.float32))


def _empty_queries(tmp, n):
    n["noq"] = tmp / "no-queries.npy"
    np.save(n["noq"], np.zeros((0, 32), np.float32))


def _d80_identity(tmp, n):
    from vecspread.stages.train import train_model

    rng = np.random.default_rng(8)
    n["d80"] = write_h5(tmp / "d80.hdf5", train=rng.standard_normal((40, 80)).astype(np.float32),
                        test=rng.standard_normal((2, 80)).astype(np.float32))
    n["id80"] = tmp / "id80.h5"
    train_model(str(n["d80"]), str(n["id80"]), "identity", {})


def _rotation20(tmp, n):
    from vecspread.stages.train import train_model

    n["rot20"] = tmp / "rot20.h5"
    train_model(str(n["data"]), str(n["rot20"]), "rotation", {"dout": 20})


def _own_copy(key, name):
    def setup(tmp, n):
        n["mine"], n["mine_source"] = tmp / name, n[key]
        shutil.copy(n[key], n["mine"])
    return setup


CAT_TINY = ("-m", "catalyzer", "--epochs", "1", "--dint", "16", "--val-size", "0", "--threads", "1")
#: the checkpoint/resume and determinism runs; batches of 2 make an epoch long enough to kill in between
CAT_CKPT = ("-m", "catalyzer", "--epochs", "3", "--val-every", "1", "--val-size", "0", "--dint", "16",
            "--batch-size", "2", "--threads", "1", "--seed", "5")

BAD_INPUTS = [
    # missing / unreadable files
    Bad("missing-model", ("encode", "{tmp}/nope.h5", "{data}", "-c", "sign", "-o", "{out}"), "nope.h5: no such file"),
    Bad("unreadable-dataset", ("gt", "{locked}", "-k", "5", "-o", "{out}"), "permission denied", _unreadable),
    Bad("directory-as-dataset", ("train", "{tmp}", "-m", "pca", "-o", "{out}"), "is a directory"),
    # not HDF5, truncated HDF5
    Bad("text-as-codes", ("search", "{text}", "{data}", "-k", "5", "-o", "{out}"), "not an HDF5 file", _text),
    Bad("fvecs-as-dataset", ("train", "{base}", "-m", "pca", "-o", "{out}"), "vecspread import"),
    Bad("truncated-dataset", ("gt", "{cut}", "-k", "5", "-o", "{out}"), "truncated", _truncated("data")),
    Bad("truncated-model", ("encode", "{cut}", "{data}", "-c", "sign", "-o", "{out}"), "truncated",
        _truncated("model")),
    Bad("truncated-fvecs", ("import", "{cut}", "--queries", "{queries}", "-o", "{out}"), "truncated",
        _truncated_fvecs),
    Bad("fvecs-read-as-bvecs", ("import", "{base}", "--queries", "{queries}", "--format", "bvecs", "-o", "{out}"),
        "not .bvecs"),
    # wrong artifact kind
    Bad("groundtruth-as-dataset", ("gt", "{gt}", "-k", "5", "-o", "{out}"),
        "expected a dataset file, found groundtruth"),
    Bad("codes-as-results", ("eval", "{codes}", "{gt}"), "expected a results file, found codes"),
    # a dataset without `test`
    Bad("hdf5-with-only-train", ("gt", "{trainonly}", "-k", "5", "-o", "{out}"), "'test'", _only_train),
    Bad("dataset-artifact-without-test", ("gt", "{notest}", "-k", "5", "-o", "{out}"), "no 'test' set",
        _artifact_without_test),
    # dimensions
    Bad("model-vs-16d-dataset", ("inspect", "{model}", "{ann16}", "--nq", "2"), "ann16.hdf5 has 16", _ann16),
    Bad("queries-of-other-dimension", ("import", "{base}", "--queries", "{q16}", "-o", "{out}"), "dimension 16",
        _queries16),
    Bad("learn-of-other-dimension", ("train", "{learn8}", "-m", "pca", "-o", "{out}"), "'learn' has dimension 8",
        _learn8),
    # lineage
    Bad("codes-with-another-models-transform", ("search", "{swapped}", "{data}", "-k", "5", "-o", "{out}"),
        "transform", _swapped_transform),
    Bad("results-against-other-queries", ("eval", "{results}", "{other_gt}", "--at", "1,10"), "another dataset"),
    Bad("groundtruth-ids-of-another-base", ("import", "{base}", "--queries", "{queries}", "--groundtruth", "{badgt}",
                                            "-o", "{out}"), "600", _groundtruth_ids_out_of_range),
    # k <= 0, k > N
    Bad("gt-k-zero", ("gt", "{data}", "-k", "0", "-o", "{out}"), "-k must be at least 1, got 0"),
    Bad("search-k-negative", ("search", "{codes}", "{data}", "-k", "-5", "-o", "{out}"), "got -5"),
    Bad("lattice-search-k-beyond-n", ("search", "{lcodes}", "{data}", "-k", "601", "-o", "{out}"), "-k 601"),
    Bad("eval-at-beyond-results", ("eval", "{results}", "{gt}", "--at", "1,101"), "--at 101"),
    # NaN / inf / all-zero
    Bad("nan-in-hdf5-train", ("gt", "{nan}", "-k", "5", "-o", "{out}"), "row 31", _nan_train),
    Bad("inf-in-database-at-encode", ("encode", "{model}", "{inf}", "-c", "sign", "-o", "{out}"), "row 17",
        _inf_train_artifact),
    Bad("inf-in-query-file", ("import", "{base}", "--queries", "{infq}", "-o", "{out}"), "row 4", _inf_queries),
    Bad("all-zero-catalyzer-training-set", ("train", "{zeros}", *CAT_TINY, "-o", "{out}"), "zero or non-finite",
        _all_zero),
    # empty sets
    Bad("empty-train-in-hdf5", ("gt", "{empty}", "-k", "1", "-o", "{out}"), "'train' is empty", _empty_train),
    Bad("empty-query-npy", ("import", "{base}", "--queries", "{noq}", "-o", "{out}"), "no vectors", _empty_queries),
    # lattice / bits the codec cannot store
    Bad("lattice-r2-beyond-512", ("encode", "{pca24}", "{data}", "-c", "lattice", "--r2", "600", "-o", "{out}"),
        "r2=600"),
    Bad("lattice-d80", ("encode", "{id80}", "{d80}", "-c", "lattice", "--bits", "64", "--blocks", "1", "-o", "{out}"),
        "use --blocks 2 or more", _d80_identity),  # without --blocks: two 40-d blocks of 32 bits
    Bad("lattice-bits-3", ("encode", "{pca24}", "{data}", "-c", "lattice", "--bits", "3", "-o", "{out}"), "--bits 3"),
    Bad("sign-bits-20", ("encode", "{rot20}", "{data}", "-c", "sign", "--bits", "20", "-o", "{out}"),
        "multiple of 8", _rotation20),
    # unknown method / codec / choice
    Bad("unknown-method-case", ("train", "{data}", "-m", "PCA", "-o", "{out}"), "'PCA'"),
    Bad("unknown-codec", ("encode", "{model}", "{data}", "-c", "hamming", "-o", "{out}"), "'hamming'"),
    Bad("bench-unknown-method", ("bench", "{data}", "--methods", "lsh,bogus", "-o", "{tmp}/bench"), "bogus",
        out="{tmp}/bench"),
    Bad("unknown-distance", ("import", "{base}", "--queries", "{queries}", "--distance", "cosine", "-o", "{out}"),
        "'cosine'"),
    # conflicting / impossible flags
    Bad("atoms-r2-and-bits", ("atoms", "--dim", "24", "--r2", "79", "--bits", "64"), "--r2"),
    Bad("sign-with-r2", ("encode", "{model}", "{data}", "-c", "sign", "--r2", "5", "-o", "{out}"), "--r2"),
    Bad("lattice-without-bits-or-r2", ("encode", "{pca24}", "{data}", "-c", "lattice", "-o", "{out}"), "--bits"),
    Bad("pca-with-catalyzer-flag", ("train", "{data}", "-m", "pca", "--dint", "16", "-o", "{out}"), "--dint"),
    Bad("pca-dout-beyond-input", ("train", "{data}", "-m", "pca", "--dout", "64", "-o", "{out}"), "--dout 64"),
    Bad("rotation-dout-zero", ("train", "{data}", "-m", "rotation", "--dout", "0", "-o", "{out}"), "--dout"),
    Bad("resume-missing-checkpoint", ("train", "{data}", *CAT_TINY, "--resume", "{tmp}/ck.h5", "-o", "{out}"),
        "--resume"),
    Bad("block-size-zero", ("gt", "{data}", "--block-size", "0", "-o", "{out}"), "--block-size"),
    Bad("stdout-output-and-json", ("gt", "{data}", "-k", "5", "-o", "-", "--json"), "--json"),
    Bad("two-stdin-inputs", ("search", "-", "-", "-o", "{out}"), "only one input can be '-'", stdin=""),
    Bad("empty-stdin", ("eval", "{results}", "-"), "standard input is empty", stdin=""),
    # output paths
    Bad("output-in-missing-directory-encode", ("encode", "{model}", "{data}", "-c", "sign", "-o", "{tmp}/no/dir/c.h5"),
        "does not exist", out="{tmp}/no/dir/c.h5"),
    Bad("output-is-a-directory", ("train", "{data}", "-m", "pca", "-o", "{tmp}"), "is a directory", out=None),
    Bad("output-equals-model", ("encode", "{mine}", "{data}", "-c", "sign", "-o", "{mine}"), "also an input",
        _own_copy("model", "model.h5"), out=None, unchanged="{mine}"),
    Bad("output-equals-dataset", ("search", "{codes}", "{mine}", "-k", "5", "-o", "{mine}"), "also an input",
        _own_copy("data", "data.h5"), out=None, unchanged="{mine}"),
    Bad("checkpoint-equals-output", ("train", "{data}", *CAT_TINY, "--checkpoint", "{out}", "-o", "{out}"),
        "is also another input or output of this stage"),
]


@dataclass
class Outcome:
    rc: int = -1
    stdout: str = ""
    stderr: str = ""
    names: dict | None = None
    skip: str | None = None
    error: BaseException | None = None


@pytest.fixture(scope="module")
def matrix(bad_env, tmp_path_factory) -> dict[str, Outcome]:
    """Build every case's inputs, then run all the commands."""
    outcomes: dict[str, Outcome] = {}
    jobs = []
    for case in BAD_INPUTS:
        o = outcomes[case.id] = Outcome()
        if case.id == "unreadable-dataset" and os.geteuid() == 0:
            o.skip = "running as root: file permissions do not stop root from reading"
            continue
        tmp = tmp_path_factory.mktemp(case.id)
        names = {**bad_env, "tmp": tmp, "out": tmp / "out.h5"}
        try:
            if case.setup:
                case.setup(tmp, names)
            o.names = names
            argv = [a.format(**names) for a in case.argv]
        except Exception as e:  # reported by the case's own test
            o.error = e
            continue
        jobs.append((o, argv, case.stdin))

    for o, argv, stdin in jobs:
        o.rc, o.stdout, o.stderr = run(*argv, stdin=stdin)
    return outcomes


def test_matrix_covers_enough_cases():
    assert len(BAD_INPUTS) >= 30
    assert len({c.id for c in BAD_INPUTS}) == len(BAD_INPUTS)


@pytest.mark.parametrize("case", BAD_INPUTS, ids=lambda c: c.id)
def test_bad_input(matrix, case):
    o = matrix[case.id]
    if o.skip:
        pytest.skip(o.skip)
    if o.error:
        raise o.error
    names = o.names
    line = assert_one_line_error(o.rc, o.stderr)
    needle = case.needle.format(**names)
    # the needle must come from the message, not from the test's directory names ("pytest-of-...")
    assert needle in line.replace(str(names["tmp"].parent), "<basetemp>"), f"the message should name {needle!r}: {line}"
    assert o.stdout == "", f"nothing on stdout for a refused command, got {o.stdout[:200]!r}"
    if case.out:
        out = Path(case.out.format(**names))
        assert not out.exists(), f"{out} was left behind"
        if out.parent.is_dir():
            assert not partial_files(out.parent)
    assert not partial_files(names["tmp"])
    if case.unchanged:
        mine = Path(case.unchanged.format(**names))
        assert mine.read_bytes() == Path(names["mine_source"]).read_bytes(), f"{mine} was modified"


# ---- what the matrix cannot hold: inputs with a defined result rather than a refusal


def test_all_zero_vectors_have_a_defined_result(tmp_path):
    """An all-zero vector has no direction. What the code defines (knn.normalize_rows, lattice._ranks):
    under angular distance it stays zero, so its distance to every vector is 1 - 0 = 1; the lattice
    encodes it as rank 0, and an all-zero query is equally far (squared distance 1) from every code."""
    from vecspread.codecs.lattice.codec import LatticeCodec

    rng = np.random.default_rng(12)
    xb = rng.standard_normal((100, 8)).astype(np.float32)
    xb[5] = 0
    xq = rng.standard_normal((4, 8)).astype(np.float32)
    xq[1] = 0
    data, gt = write_h5(tmp_path / "zeros.hdf5", "angular", train=xb, test=xq), tmp_path / "gt.h5"
    ok(run("gt", data, "-k", 5, "-o", gt), "gt")
    with h5py.File(gt, "r") as f:
        I, D = f["neighbors"][()], f["distances"][()]
    np.testing.assert_array_equal(D[1], np.ones(5, np.float32))  # the zero query: 1 - cos = 1 to all
    assert len(set(I[1].tolist())) == 5
    assert 5 not in I[0] or D[0][list(I[0]).index(5)] == 1  # the zero database vector is at distance 1
    codec = LatticeCodec(bits=32).fit(xb)
    codes = codec.encode(xb)
    assert not codes[5].any()  # rank 0
    Dl, Il = search(codec, xq[1:2], [codes], 10)
    np.testing.assert_allclose(Dl, 1.0, atol=1e-5)
    assert len(set(Il[0].tolist())) == 10


def test_uint8_values_that_do_not_fit_cannot_reach_a_dataset(tmp_path):
    """Vectors are stored as uint8 only when the file's own type is uint8 (.bvecs, .u8bin, uint8 .npy),
    so an out-of-range value cannot arise on import: a wider integer type is stored as float32, values
    intact; the writer refuses 300 for .bvecs; an HDF5 train of int16 is read as float."""
    from vecspread.io.datasets import Dataset
    from vecspread.errors import InputError

    x = np.full((6, 4), 300, np.int16)
    x[0, 0] = -7
    with pytest.raises(InputError, match="do not fit uint8"):
        write_vectors(str(tmp_path / "x.bvecs"), x)
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "d.h5"
    ok(run("import", tmp_path / "x.npy", "--queries", tmp_path / "x.npy", "-o", out), "import")
    with h5py.File(out, "r") as f:
        assert f["train"].dtype == np.float32
        np.testing.assert_array_equal(f["train"][()], x.astype(np.float32))
    with Dataset(write_h5(tmp_path / "i16.hdf5", train=x, test=x[:2])) as ds:
        np.testing.assert_array_equal(ds.read("train"), x.astype(np.float32))


# ============================================================================================
# 2. atomic outputs: SIGKILL each writing stage at random moments


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    """300 x 32 random vectors, 20 queries: the tiny catalyzer's dataset."""
    d = tmp_path_factory.mktemp("small")
    rng = np.random.default_rng(21)
    write_vectors(str(d / "b.fvecs"), rng.standard_normal((300, 32)).astype(np.float32))
    write_vectors(str(d / "q.fvecs"), rng.standard_normal((20, 32)).astype(np.float32))
    ok(run("import", d / "b.fvecs", "--queries", d / "q.fvecs", "-o", d / "small.h5"), "import")
    return d / "small.h5"


@dataclass
class Big:
    argv: dict  # stage -> (output path -> argv)
    reference: dict  # stage -> the output of a complete run
    seconds: dict  # stage -> wall time of that run


KINDS = {"import": "dataset", "gt": "groundtruth", "train-pca": "model", "encode": "codes", "search": "results"}


@pytest.fixture(scope="module")
def big(tmp_path_factory) -> Big:
    """200k x 32 float32, so that each stage runs for ~0.5-2 s. Every stage runs once to completion
    here: the inputs of the next stage, the reference output, the duration."""
    d = tmp_path_factory.mktemp("big")
    rng = np.random.default_rng(20)
    base, queries = d / "base.fvecs", d / "query.fvecs"
    write_vectors(str(base), rng.standard_normal((200_000, 32), dtype=np.float32))
    write_vectors(str(queries), rng.standard_normal((500, 32), dtype=np.float32))
    data, model, codes = d / "data.h5", d / "model.h5", d / "codes.h5"
    argv = {
        "import": lambda out: ("import", base, "--queries", queries, "-o", out),
        "gt": lambda out: ("gt", data, "-k", 10, "-o", out),
        "train-pca": lambda out: ("train", data, "-m", "pca", "--dout", 32, "-o", out),
        "encode": lambda out: ("encode", model, data, "-c", "sign", "-o", out),
        "search": lambda out: ("search", codes, data, "-k", 10, "-o", out),
    }
    reference = {"import": data, "gt": d / "gt.h5", "train-pca": model, "encode": codes, "search": d / "res.h5"}
    seconds = {}
    for stage, make_argv in argv.items():
        t0 = time.perf_counter()
        ok(run(*make_argv(reference[stage])), stage)
        seconds[stage] = time.perf_counter() - t0
    return Big(argv, reference, seconds)


def kill_moments(stage: str, seconds: float) -> list:
    """Seeded: very early, a random moment in the run, and "partial" = as soon as the partial file
    appears (mid-write for the stages that stream their output, the very end for the others)."""
    rng = random.Random(f"kill {stage}")
    return [rng.uniform(0.01, 0.1), rng.uniform(0.2, 1.0) * seconds, "partial"]


def kill_at(args: tuple, moment, target: Path) -> subprocess.Popen:
    proc = start(*args)
    if moment == "partial":  # this process's own partial file (python -m vecspread runs as proc itself)
        mine = partial_path(target, process_tag(proc.pid))
        deadline = time.monotonic() + 120
        while proc.poll() is None and not mine.exists() and time.monotonic() < deadline:
            time.sleep(0.002)
    else:
        try:
            proc.wait(timeout=moment)
        except subprocess.TimeoutExpired:
            pass
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return proc


def artifact_state(path: Path) -> dict | None:
    """None when absent; else what a check needs: kind, recorded and recomputed fingerprints (or the
    error that opening it raised)."""
    if not path.exists():
        return None
    try:
        with h5py.File(path, "r") as f:
            return {"kind": f.attrs.get("vecspread_kind"), "recorded": f.attrs.get("fingerprint"),
                    "content": content_fingerprint(f)}
    except Exception as e:  # a half-written file: the check reports it
        return {"error": repr(e)}


def kill_sequence(make_argv, moments: list, target: Path) -> dict:
    """Start the command writing ``target`` and SIGKILL it at each moment in turn; then run it to
    completion. Records what was beside the target after each kill and at the end."""
    kills = []
    for moment in moments:
        proc = kill_at(make_argv(target), moment, target)
        kills.append({"moment": moment, "pid": proc.pid, "rc": proc.returncode, "target": artifact_state(target),
                      "others": sorted(set(os.listdir(target.parent)) - {target.name})})
    final = run(*make_argv(target))
    return {"kills": kills, "final": final, "final_target": artifact_state(target),
            "final_others": sorted(set(os.listdir(target.parent)) - {target.name})}


def check_kill_sequence(seq: dict, target: Path, kind: str, reference: Path) -> None:
    pattern = partial_name(target)
    expected = fingerprint_attr(reference)
    pids = {k["pid"] for k in seq["kills"]}
    for k in seq["kills"]:
        state = k["target"]  # absent, or a complete valid artifact (the same as a full run's)
        if state is not None:
            assert state.get("kind") == kind and state.get("recorded") == state.get("content") == expected, (k, seq)
        for name in k["others"]:  # anything else beside it is obviously partial, from a killed process
            m = pattern.match(name)
            assert m and int(m.group(1)) in pids, f"unexpected file {name} after a kill at {k['moment']}: {seq}"
    # the next complete run removes the partial files of the killed ones and leaves one valid artifact
    assert seq["final"][0] == 0, seq["final"][2]
    assert seq["final_others"] == [], seq
    final = seq["final_target"]
    assert final and final["kind"] == kind and final["recorded"] == final["content"] == expected, final


@pytest.mark.parametrize("stage", ["import", "gt", "train-pca", "encode", "search"])
def test_sigkill_leaves_no_half_written_artifact(big, stage, tmp_path):
    target = tmp_path / "target.h5"
    seq = kill_sequence(big.argv[stage], kill_moments(stage, big.seconds[stage]), target)
    check_kill_sequence(seq, target, KINDS[stage], big.reference[stage])
    if stage in ("import", "encode"):  # they write for most of the run: the "partial" kill is mid-write
        last = seq["kills"][-1]
        pattern = partial_name(target)
        assert last["rc"] == -signal.SIGKILL and any(
            (m := pattern.match(name)) and int(m.group(1)) == last["pid"] for name in last["others"]), (
            f"no kill landed mid-write: {seq}")


def test_sigkill_catalyzer_training_leaves_no_half_written_model(catalyzer_runs):
    """Killed very early, then mid-training (just after its first checkpoint), then resumed to completion."""
    r = catalyzer_runs
    check_kill_sequence(r["kill_sequence"], r["c"], "model", r["a"])


# ============================================================================================
# 3. catalyzer checkpoints survive SIGKILL; 5. seeded catalyzer runs are identical


@pytest.fixture(scope="module")
def catalyzer_runs(small, tmp_path_factory) -> dict:
    """Every catalyzer run of this module (they are the slow ones), two at a time.

    1. ``a``, uninterrupted; beside it, runs writing ``c`` with --checkpoint: one SIGKILLed very early,
       one SIGKILLed as soon as its first checkpoint appears (the "victim");
    2. ``b``, uninterrupted; beside it, --resume from the victim's checkpoint to completion of ``c``.
    """
    d = tmp_path_factory.mktemp("catalyzer")
    (d / "out").mkdir()
    (d / "ck").mkdir()
    a, b, c, ck = d / "a.h5", d / "b.h5", d / "out" / "c.h5", d / "ck" / "ck.h5"

    def full(out: Path) -> subprocess.Popen:
        return subprocess.Popen(cli_command("train", small, *CAT_CKPT, "-o", out), stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, env=ONE_THREAD)

    def others() -> list[str]:
        return sorted(set(os.listdir(c.parent)) - {c.name})

    run_a = full(a)
    kills = []
    moment = random.Random("kill catalyzer").uniform(0.05, 0.4)
    early = kill_at(("train", small, *CAT_CKPT, "--checkpoint", ck, "-o", c), moment, c)
    kills.append({"moment": moment, "pid": early.pid, "rc": early.returncode, "target": artifact_state(c),
                  "others": others()})
    victim = start("train", small, *CAT_CKPT, "--checkpoint", ck, "-o", c)
    deadline = time.monotonic() + 120
    while not ck.exists() and victim.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    kills.append({"moment": "after the first checkpoint", "pid": victim.pid, "rc": victim.returncode,
                  "target": artifact_state(c), "others": others()})
    rec = {"a": a, "b": b, "c": c, "ck": ck, "victim_rc": victim.returncode, "target_after_kill": c.exists(),
           "checkpoint_files_after_kill": sorted(os.listdir(ck.parent))}
    rec["checkpoint_epoch"] = read_checkpoint(str(ck), "catalyzer")[0]["epoch"]
    # what a SIGKILL inside write_checkpoint leaves behind (its window is too short to hit on purpose):
    # the checkpoint is written to .ck.h5.TAG.partial, then renamed onto the checkpoint
    rec["stale_tmp"] = partial_path(ck, process_tag(victim.pid))
    rec["stale_tmp"].write_bytes(b"half a checkpoint")
    _, err = run_a.communicate(timeout=300)
    assert run_a.returncode == 0, err
    run_b = full(b)
    rec["resumed"] = run("train", small, *CAT_CKPT, "--checkpoint", ck, "--resume", ck, "-o", c)
    rec["kill_sequence"] = {"kills": kills, "final": rec["resumed"], "final_target": artifact_state(c),
                            "final_others": others()}
    _, err = run_b.communicate(timeout=300)
    assert run_b.returncode == 0, err
    return rec


def test_checkpoint_resume_after_sigkill_equals_uninterrupted_run(catalyzer_runs):
    r = catalyzer_runs
    assert r["victim_rc"] == -signal.SIGKILL, "the run finished before it could be killed: make epochs longer"
    assert r["checkpoint_epoch"] in (1, 2, 3)
    assert not r["target_after_kill"], "a killed training run left its model behind"
    assert r["checkpoint_files_after_kill"] == ["ck.h5"], r["checkpoint_files_after_kill"]
    rc, _, err = r["resumed"]
    assert rc == 0, err
    assert f"resumed from {r['ck']} after epoch {r['checkpoint_epoch']}" in err
    assert_complete_artifact(r["c"], "model")
    assert_same_arrays(group_arrays(r["c"], "transform"), group_arrays(r["a"], "transform"))


def test_checkpoint_temp_file_of_a_killed_write_is_cleaned_or_obviously_partial(catalyzer_runs):
    """README: temporary files are named .NAME.TAG.partial and those of dead processes are removed the
    next time the target is written. The checkpoint writer's temporary file must follow the same rule."""
    stale: Path = catalyzer_runs["stale_tmp"]
    assert catalyzer_runs["resumed"][0] == 0
    assert partial_name(catalyzer_runs["ck"]).match(stale.name)
    assert not stale.exists(), f"{stale.name} (left by a SIGKILL during a checkpoint write) survived the next run"


def test_seeded_catalyzer_is_deterministic(catalyzer_runs):
    a, b = catalyzer_runs["a"], catalyzer_runs["b"]
    assert_same_arrays(group_arrays(a, "transform"), group_arrays(b, "transform"))
    assert assert_complete_artifact(a, "model") == assert_complete_artifact(b, "model")


# ============================================================================================
# 4. no pickles: loading never executes code from the file


class _Plant:
    """Unpickling this opens (creates) ``marker``: proof that the loader executed the file."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _payload(marker: Path) -> bytes:
    return pickle.dumps(_Plant(str(marker)))


def _vlen_uint8(g, name, payload):
    ds = g.create_dataset(name, shape=(1,), dtype=h5py.vlen_dtype(np.uint8))
    ds[0] = np.frombuffer(payload, np.uint8)


PLANTS = {  # the payload where a weight should be, as each kind of HDF5 type that can hold bytes
    "opaque": lambda g, name, p: g.create_dataset(name, data=np.void(p)),
    "fixed-bytes": lambda g, name, p: g.create_dataset(name, data=np.array([p])),
    "vlen-uint8": _vlen_uint8,
    "uint8-array": lambda g, name, p: g.create_dataset(name, data=np.frombuffer(p, np.uint8)),
}


def test_planted_pickle_is_live(tmp_path):
    """Control: the payload really does create its marker when unpickled."""
    marker = tmp_path / "control"
    pickle.loads(_payload(marker)).close()
    assert marker.exists()


@pytest.mark.parametrize("where, plant", [("model", p) for p in PLANTS] + [("codes", "opaque")])
def test_malicious_pickle_in_weights_is_refused(pipeline, tmp_path, where, plant):
    marker = tmp_path / "PWNED"
    victim = tmp_path / f"{where}.h5"
    shutil.copy(pipeline.rot32 if where == "model" else pipeline.sign_codes, victim)
    with h5py.File(victim, "a") as f:
        del f["transform/matrix"]  # a weight the loader needs, replaced by the payload
        PLANTS[plant](f["transform"], "matrix", _payload(marker))
    out = tmp_path / "out.h5"
    if where == "model":
        rc, stdout, stderr = run("encode", victim, pipeline.data.h5, "-c", "sign", "-o", out)
    else:
        rc, stdout, stderr = run("search", victim, pipeline.data.h5, "-k", 5, "-o", out)
    line = assert_one_line_error(rc, stderr)
    assert str(victim) in line
    assert not marker.exists(), "loading the file executed code from it"
    assert not out.exists() and not partial_files(tmp_path)


def _numeric_only(path: Path) -> list[str]:
    """Every dataset and attribute that is not plain numbers or text."""
    bad = []

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            dt = obj.dtype
            if dt.kind not in "biuf" or h5py.check_vlen_dtype(dt) is not None or dt.fields:
                bad.append(f"{name}: {dt}")
        for key, value in obj.attrs.items():
            if not isinstance(value, (str, bytes, int, float, np.integer, np.floating, np.bool_)) and not (
                isinstance(value, np.ndarray) and value.dtype.kind in "biufSU"
            ):
                bad.append(f"{name}@{key}: {type(value).__name__}")

    with h5py.File(path, "r") as f:
        visit("/", f)
        f.visititems(visit)
    return bad


def test_every_artifact_kind_holds_only_numbers_and_text(pipeline, catalyzer_runs):
    p = pipeline
    files = {"dataset": p.data.h5, "groundtruth": p.gt, "model (pca)": p.pca24, "model (rotation)": p.rot32,
             "model (identity)": p.identity, "model (catalyzer)": catalyzer_runs["a"], "codes (sign)": p.sign_codes,
             "codes (lattice)": p.lattice_codes, "results": p.sign_results,
             "catalyzer checkpoint": catalyzer_runs["ck"]}
    found = {what: _numeric_only(path) for what, path in files.items()}
    assert not any(found.values()), found


# ============================================================================================
# 5. determinism: train and encode with --seed give identical weights and codes


def test_seeded_rotation_and_encode_are_deterministic(pipeline, tmp_path):
    data = pipeline.data.h5
    r1, r2 = tmp_path / "r1.h5", tmp_path / "r2.h5"
    for res in run_all([("train", data, "-m", "rotation", "--dout", 32, "--seed", 3, "-o", r) for r in (r1, r2)]):
        ok(res, "train")
    assert_same_arrays(group_arrays(r1, "transform"), group_arrays(r2, "transform"))
    assert assert_complete_artifact(r1, "model") == assert_complete_artifact(r2, "model")
    codes = {name: tmp_path / f"{name}.h5" for name in ("s1", "s2", "l1", "l2")}
    jobs = [("encode", r1, data, "-c", "sign", "-o", codes["s1"]),
            ("encode", r2, data, "-c", "sign", "-o", codes["s2"]),
            ("encode", pipeline.pca24, data, "-c", "lattice", "--bits", 64, "-o", codes["l1"]),
            ("encode", pipeline.pca24, data, "-c", "lattice", "--bits", 64, "-o", codes["l2"])]
    for res in run_all(jobs):
        ok(res, "encode")
    for x, y in (("s1", "s2"), ("l1", "l2")):
        with h5py.File(codes[x], "r") as f, h5py.File(codes[y], "r") as g:
            assert f["codes"][()].tobytes() == g["codes"][()].tobytes()
        assert assert_complete_artifact(codes[x], "codes") == assert_complete_artifact(codes[y], "codes")
