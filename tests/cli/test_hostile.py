"""Hostile files and faults (issue 13): what an attacker or an unlucky user can hand vecspread.

Every case runs the real command line (in this process unless a real process is the point: signals,
file size limits) and checks the contract: the expected exit code, one line on stderr naming the
problem, nothing on stdout, no output and no partial file left, and -- for files that point elsewhere --
no byte of any other file read. The classes follow the issue:

1. reading outside the file (external storage, external links, virtual datasets, soft links, dtypes);
2. outputs that are not regular files (devices, FIFOs, sockets) and inputs that are not (FIFOs, devices);
3. a full disk (RLIMIT_FSIZE: writes fail with EFBIG, as on a full file system);
4. tiny files and flags that claim huge work;
5. tampering (fingerprints over arrays and configs; NaN weights; ids out of range);
6. numerics (values whose squared distances overflow float32);
7. signals (SIGINT, SIGTERM, start-up included);
8. bad input that used to be an "internal error" (exit 3);
9. partial files of other writers;
10. smaller ones (threads, lr, warnings, hints).

A bounded fuzz test (truncation, bit flips, attribute edits on real artifacts) closes the module.
"""

from __future__ import annotations

import json
import os
import random
import resource
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import h5py
import numpy as np
import pytest

from conftest import assert_one_line_error, cli_command, cli_env, cli_ok, partial_files, run_cli
from vecspread.io import fingerprints
from vecspread.io.atomic import partial_path
from vecspread.io.formats import write_vectors

ONE_THREAD = cli_env(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
SECRET = b"TOP-SECRET-BYTES" * 64  # 1 KB that no output may ever contain
CAT = ("-m", "catalyzer", "--epochs", "1", "--dint", "16", "--val-size", "0", "--threads", "1", "--kneg", "5")


# --------------------------------------------------------------------------------------------
# the files to spoil


@pytest.fixture(scope="module")
def env(pipeline, tmp_path_factory) -> dict:
    """The session pipeline's artifacts, plus a tiny catalyzer model and its checkpoint, and a secret file."""
    d = tmp_path_factory.mktemp("hostile-env")
    secret = d / "secret.bin"
    secret.write_bytes(SECRET)
    cat, ck = d / "cat.h5", d / "ck.h5"
    cli_ok("train", pipeline.data.h5, *CAT, "--checkpoint", ck, "-o", cat)
    return {
        "data": pipeline.data.h5, "base": pipeline.data.base, "queries": pipeline.data.queries, "gt": pipeline.gt,
        "rot": pipeline.rot32, "pca24": pipeline.pca24, "codes": pipeline.sign_codes,
        "lcodes": pipeline.lattice_codes, "results": pipeline.sign_results, "cat": cat, "ck": ck,
        "secret": secret,
    }


def copy(n: dict, key: str, tmp: Path, name: str | None = None) -> Path:
    dst = tmp / (name or Path(n[key]).name)
    shutil.copy(n[key], dst)
    return dst


def edit(path: Path, change: Callable[[h5py.File], None], *, refingerprint: bool = False) -> Path:
    """Change a file in place; ``refingerprint``: then record its fingerprints anew, as an attacker who
    knows the scheme would, so that only the deeper checks (NaN, ranges, bounds) stand in the way."""
    with h5py.File(path, "r+") as f:
        change(f)
        if refingerprint:
            fingerprints.record(f)
    return path


def replace(f: h5py.File, name: str, **create) -> None:
    del f[name]
    f.create_dataset(name, **create)


def set_config(group: str, **changes) -> Callable[[h5py.File], None]:
    def change(f: h5py.File) -> None:
        config = json.loads(f[group].attrs["config"])
        config.update(changes)
        f[group].attrs["config"] = json.dumps(config)
    return change


def ann_file(path: Path, **sets: np.ndarray) -> Path:
    """An ann-benchmarks style file (no vecspread attributes, no fingerprint)."""
    with h5py.File(path, "w") as f:
        f.attrs["distance"] = "euclidean"
        for name, x in sets.items():
            f.create_dataset(name, data=x)
    return path


def vectors(n: int, d: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)


# --- class 1: files that point elsewhere


def external_storage(member: str, key: str = "data"):
    """``member`` of a copy of ``key`` re-created with its bytes "in" the secret file (HDF5 external storage)."""
    def setup(tmp: Path, n: dict) -> None:
        victim = copy(n, key, tmp, "victim.h5")
        with h5py.File(victim, "r+") as f:
            shape, dtype = f[member].shape, f[member].dtype
            nbytes = int(np.prod(shape)) * dtype.itemsize
            del f[member]
            f.create_dataset(member, shape=shape, dtype=dtype, external=[(str(n["secret"]), 0, nbytes)])
        n["victim"] = victim
    return setup


def external_link(member: str, key: str = "data", refingerprint: bool = True):
    def setup(tmp: Path, n: dict) -> None:
        other = copy(n, key, tmp, "other.h5")
        victim = copy(n, key, tmp, "victim.h5")
        with h5py.File(victim, "r+") as f:
            del f[member]
            f[member] = h5py.ExternalLink(str(other), "/" + member)
            if refingerprint:
                fingerprints.record(f)
        n["victim"] = victim
    return setup


def virtual(member: str, source_exists: bool = True):
    def setup(tmp: Path, n: dict) -> None:
        other = copy(n, "data", tmp, "other.h5") if source_exists else tmp / "missing.h5"
        victim = copy(n, "data", tmp, "victim.h5")
        with h5py.File(victim, "r+") as f:
            shape, dtype = f[member].shape, f[member].dtype
            layout = h5py.VirtualLayout(shape=shape, dtype=dtype)
            layout[:] = h5py.VirtualSource(str(other), member, shape=shape)
            del f[member]
            f.create_virtual_dataset(member, layout, fillvalue=0)
        n["victim"] = victim
    return setup


def soft_link(member: str, target: str, key: str = "data", keep: str | None = None):
    """``member`` replaced by a soft link to ``target`` (``keep``: first move the member there), the
    fingerprints recorded anew."""
    def setup(tmp: Path, n: dict) -> None:
        victim = copy(n, key, tmp, "victim.h5")
        with h5py.File(victim, "r+") as f:
            if keep:
                f.move(member, keep)
            else:
                del f[member]
            f[member] = h5py.SoftLink(target)
            fingerprints.record(f)
        n["victim"] = victim
    return setup


def soft_loop(tmp: Path, n: dict) -> None:
    victim = copy(n, "data", tmp, "victim.h5")
    with h5py.File(victim, "r+") as f:
        del f["train"]
        f["train"] = h5py.SoftLink("/a")
        f["a"] = h5py.SoftLink("/train")
        fingerprints.record(f)
    n["victim"] = victim


def train_of_dtype(data_fn, dtype=None):
    def setup(tmp: Path, n: dict) -> None:
        n["victim"] = edit(copy(n, "data", tmp, "victim.h5"),
                           lambda f: replace(f, "train", data=data_fn(), **({"dtype": dtype} if dtype else {})),
                           refingerprint=True)
    return setup


def _ragged() -> np.ndarray:
    a = np.empty(600, dtype=object)
    for i in range(600):
        a[i] = np.zeros(3, np.float32)
    return a


def unused_members(tmp: Path, n: dict) -> None:
    """Beside the vectors: query texts (strings) and an unused member stored "in" the secret file."""
    victim = copy(n, "data", tmp, "victim.h5")
    with h5py.File(victim, "r+") as f:
        f.create_dataset("texts", data=np.array([b"a query text"] * 40))
        f.create_dataset("elsewhere", shape=(16,), dtype="u1", external=[(str(n["secret"]), 0, 16)])
    n["victim"] = victim


def model_with_external_weight(key: str):
    def setup(tmp: Path, n: dict) -> None:
        victim = copy(n, key, tmp, "victim.h5")
        with h5py.File(victim, "r+") as f:
            name = next(k for k in ("transform/matrix", "transform/net.0.weight") if k in f)
            shape, dtype = f[name].shape, f[name].dtype
            del f[name]
            f.create_dataset(name, shape=shape, dtype=dtype,
                             external=[(str(n["secret"]), 0, int(np.prod(shape)) * dtype.itemsize)])
            fingerprints.record(f)
        n["victim"] = victim
    return setup


def checkpoint_with_external_weight(tmp: Path, n: dict) -> None:
    victim = copy(n, "ck", tmp, "victim-ck.h5")
    with h5py.File(victim, "r+") as f:
        name = "model/net.0.weight"
        shape, dtype = f[name].shape, f[name].dtype
        del f[name]
        f.create_dataset(name, shape=shape, dtype=dtype,
                         external=[(str(n["secret"]), 0, int(np.prod(shape)) * dtype.itemsize)])
        fingerprints.record(f)
    n["victim"] = victim


# --- class 2: outputs and inputs that are not regular files


def fifo(tmp: Path, n: dict) -> None:
    os.mkfifo(tmp / "pipe.fvecs")  # a name that says "vectors": only what it is betrays it
    n["pipe"] = tmp / "pipe.fvecs"


def unix_socket(tmp: Path, n: dict) -> None:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(tmp / "sock"))
    n["sock"] = tmp / "sock"
    n["_keep"] = s  # closed with the module


def device_node(tmp: Path, n: dict) -> None:
    """A character device like /dev/null (1, 3) in the test's own directory (root only)."""
    if os.geteuid() != 0:
        pytest.skip("creating a device node needs root")
    os.mknod(tmp / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    n["dev"] = tmp / "null"


# --- class 4: files that claim huge work


def huge_claim(key: str, member: str, shape: tuple, chunks: tuple):
    """``member`` re-created as a chunked dataset claiming ``shape`` with no chunk written."""
    def setup(tmp: Path, n: dict) -> None:
        def change(f):
            dtype = f[member].dtype
            del f[member]
            f.create_dataset(member, shape=shape, dtype=dtype, chunks=chunks)
        n["victim"] = edit(copy(n, key, tmp, "victim.h5"), change, refingerprint=True)
    return setup


def model_config(key: str, refingerprint: bool = True, **changes):
    def setup(tmp: Path, n: dict) -> None:
        n["victim"] = edit(copy(n, key, tmp, "victim.h5"), set_config("transform", **changes),
                           refingerprint=refingerprint)
    return setup


# --- class 5: tampering


def flip(key: str, member: str, index: tuple = (0, 0), refingerprint: bool = False, value=None):
    """One element of ``member`` changed (bit 0 flipped, or set to ``value``)."""
    def setup(tmp: Path, n: dict) -> None:
        def change(f):
            a = f[member][()]
            if value is not None:
                a[index] = value
            elif a.dtype.kind == "f":
                a[index] = np.nextafter(a[index], np.float32(np.inf))
            else:
                a[index] ^= 1
            f[member][...] = a
        n["victim"] = edit(copy(n, key, tmp, "victim.h5"), change, refingerprint=refingerprint)
    return setup


def set_attr(key: str, where: str, attr: str, value, refingerprint: bool = False):
    def setup(tmp: Path, n: dict) -> None:
        def change(f):
            f[where].attrs[attr] = value
        n["victim"] = edit(copy(n, key, tmp, "victim.h5"), change, refingerprint=refingerprint)
    return setup


def checkpoint_edit(change: Callable[[h5py.File], None]):
    def setup(tmp: Path, n: dict) -> None:
        n["victim"] = edit(copy(n, "ck", tmp, "victim-ck.h5"), change, refingerprint=True)
    return setup


def ck_meta(**changes) -> Callable[[h5py.File], None]:
    def change(f):
        meta = json.loads(bytes(f["meta"][()]).decode())
        meta.update(changes)
        replace(f, "meta", data=np.frombuffer(json.dumps(meta).encode(), np.uint8))
    return change


def ck_bad_json(f: h5py.File) -> None:
    replace(f, "meta", data=np.frombuffer(b'{"kind": "catalyzer", "format": 2, ', np.uint8))


def ck_truncated_rng(f: h5py.File) -> None:
    name = next(f"rng/{k}" for k in f["rng"])
    replace(f, name, data=f[name][: len(f[name]) // 2])


def ck_wrong_shape(f: h5py.File) -> None:
    replace(f, "model/net.0.weight", data=np.zeros((3, 3), np.float32))


def ck_nan(f: h5py.File) -> None:
    a = f["model/net.0.weight"][()]
    a[0, 0] = np.nan
    f["model/net.0.weight"][...] = a


# --- class 6 and 8


def big_values_fvecs(tmp: Path, n: dict) -> None:
    x = vectors(200)
    x[57, 3] = 1e20
    write_vectors(str(tmp / "big.fvecs"), x)
    write_vectors(str(tmp / "q.fvecs"), vectors(10, seed=1))
    n.update(big=tmp / "big.fvecs", q=tmp / "q.fvecs")


def big_values_h5(member: str):
    def setup(tmp: Path, n: dict) -> None:
        sets = {"train": vectors(200), "test": vectors(10, seed=1)}
        sets[member][7, 0] = 3e19
        n["victim"] = ann_file(tmp / "victim.h5", **sets)
    return setup


def codes_1d(tmp: Path, n: dict) -> None:
    n["victim"] = edit(copy(n, "codes", tmp, "victim.h5"),
                       lambda f: replace(f, "codes", data=f["codes"][()].ravel()), refingerprint=True)


def gt_shape_mismatch(tmp: Path, n: dict) -> None:
    n["victim"] = edit(copy(n, "gt", tmp, "victim.h5"),
                       lambda f: replace(f, "distances", data=f["distances"][:, :5]), refingerprint=True)


def non_utf8_name(tmp: Path, n: dict) -> None:
    name = os.fsdecode(b"data-\xff.h5")
    shutil.copy(n["data"], tmp / name)
    n["victim"] = tmp / name


# --------------------------------------------------------------------------------------------
# the cases


@dataclass(frozen=True)
class Case:
    """``argv`` and ``needle`` are formatted with the names (``env`` plus what ``setup`` adds, ``{tmp}``,
    ``{out}``). ``rc`` 0 cases are the other side of a refusal: what must keep working."""

    id: str
    group: int
    argv: tuple
    needle: str
    setup: Callable[[Path, dict], None] | None = None
    rc: int = 2


OUT = ("-o", "{out}")
CASES = [
    # 1. nothing is read outside the named files
    Case("external-storage-train", 1, ("gt", "{victim}", "-k", "1", *OUT), "keeps its bytes in another file",
         external_storage("train")),
    Case("external-storage-queries", 1, ("search", "{codes}", "{victim}", "-k", "5", *OUT),
         "keeps its bytes in another file", external_storage("test")),
    Case("external-storage-learn-via-train", 1, ("train", "{victim}", "-m", "pca", *OUT),
         "keeps its bytes in another file", external_storage("train")),
    Case("external-storage-model-weight", 1, ("encode", "{victim}", "{data}", "-c", "sign", *OUT),
         "keeps its bytes in another file", model_with_external_weight("rot")),
    Case("external-storage-catalyzer-weight", 1, ("encode", "{victim}", "{data}", "-c", "sign", "--bits", "24", *OUT),
         "keeps its bytes in another file", model_with_external_weight("cat")),
    Case("external-storage-codes", 1, ("search", "{victim}", "{data}", "-k", "5", *OUT),
         "keeps its bytes in another file", external_storage("codes", "codes")),
    Case("external-storage-groundtruth", 1, ("eval", "{results}", "{victim}"), "keeps its bytes in another file",
         external_storage("neighbors", "gt")),
    Case("external-storage-results", 1, ("eval", "{victim}", "{gt}"), "keeps its bytes in another file",
         external_storage("neighbors", "results")),
    Case("external-storage-checkpoint", 1, ("train", "{data}", *CAT, "--resume", "{victim}", *OUT),
         "keeps its bytes in another file", checkpoint_with_external_weight),
    Case("external-link-train", 1, ("gt", "{victim}", "-k", "1", *OUT), "external link", external_link("train")),
    Case("external-link-transform", 1, ("encode", "{victim}", "{data}", "-c", "sign", *OUT), "external link",
         external_link("transform", "rot")),
    Case("external-link-weight", 1, ("encode", "{victim}", "{data}", "-c", "sign", *OUT), "external link",
         external_link("transform/matrix", "rot")),
    Case("external-link-not-refingerprinted", 1, ("gt", "{victim}", "-k", "1", *OUT), "link /train does not match",
         external_link("train", refingerprint=False)),
    Case("external-link-inspect", 1, ("inspect", "{victim}", "{data}", "--nq", "5", "--sample", "100", "-k", "5"),
         "external link", external_link("transform", "rot")),
    Case("virtual-train", 1, ("gt", "{victim}", "-k", "1", *OUT), "virtual dataset", virtual("train")),
    Case("virtual-missing-source", 1, ("gt", "{victim}", "-k", "1", *OUT), "virtual dataset",
         virtual("train", source_exists=False)),
    Case("soft-link-out-of-file", 1, ("gt", "{victim}", "-k", "1", *OUT), "has no 'train'",
         soft_link("train", "/nowhere/train")),
    Case("soft-link-loop", 1, ("gt", "{victim}", "-k", "1", *OUT), "loop of soft links", soft_loop),
    Case("soft-link-in-model", 1, ("encode", "{victim}", "{data}", "-c", "sign", *OUT), "soft link",
         soft_link("transform/matrix", "/transform/other", "rot", keep="transform/other")),
    Case("string-train", 1, ("gt", "{victim}", "-k", "1", *OUT), "expected numbers",
         train_of_dtype(lambda: np.array([b"abc"] * 600))),
    Case("compound-train", 1, ("gt", "{victim}", "-k", "1", *OUT), "expected numbers",
         train_of_dtype(lambda: np.zeros((600, 4), dtype=[("a", "f4"), ("b", "i4")]))),
    Case("vlen-train", 1, ("gt", "{victim}", "-k", "1", *OUT), "expected numbers",
         train_of_dtype(_ragged, h5py.vlen_dtype(np.float32))),
    Case("soft-link-inside-is-followed", 1, ("gt", "{victim}", "-k", "1", *OUT), "",
         soft_link("train", "/vectors", keep="vectors"), rc=0),
    Case("unused-members-left-alone", 1, ("gt", "{victim}", "-k", "1", *OUT), "", unused_members, rc=0),
    # 2. regular files only
    Case("output-fifo", 2, ("gt", "{data}", "-k", "1", "-o", "{pipe}"), "named pipe", fifo),
    Case("output-socket", 2, ("gt", "{data}", "-k", "1", "-o", "{sock}"), "socket", unix_socket),
    Case("output-device", 2, ("gt", "{data}", "-k", "1", "-o", "{dev}"), "device", device_node),
    Case("output-dev-null", 2, ("train", "{data}", "-m", "pca", "-o", "/dev/null"), "device"),
    Case("checkpoint-fifo", 2, ("train", "{data}", *CAT, "--checkpoint", "{pipe}", *OUT), "named pipe", fifo),
    Case("inspect-output-fifo", 2, ("inspect", "{rot}", "{data}", "--nq", "5", "--sample", "100", "-k", "5",
                                    "-o", "{pipe}"), "named pipe", fifo),
    Case("input-fifo-dataset", 2, ("gt", "{pipe}", "-k", "1", *OUT), "named pipe", fifo),
    Case("input-fifo-vectors", 2, ("import", "{pipe}", "--queries", "{queries}", *OUT), "named pipe", fifo),
    Case("input-device", 2, ("gt", "/dev/zero", "-k", "1", *OUT), "device"),
    Case("input-directory", 2, ("search", "{tmp}", "{data}", *OUT), "directory"),
    # 4. bounded work before work
    Case("rows-claimed-1e12", 4, ("gt", "{victim}", "-k", "1", *OUT), "claims",
         huge_claim("data", "train", (10**12, 32), (1024, 32))),
    Case("dims-claimed-1e6", 4, ("gt", "{victim}", "-k", "1", *OUT), "claims",
         huge_claim("data", "test", (40, 10**6), (1, 1024))),
    Case("codes-claimed-1e12", 4, ("search", "{victim}", "{data}", "-k", "1", *OUT), "claims",
         huge_claim("codes", "codes", (10**12, 4), (65536, 4))),
    Case("model-dint-20000", 4, ("encode", "{victim}", "{data}", "-c", "sign", "--bits", "24", *OUT), "weights",
         model_config("cat", dint=20000)),
    Case("model-hidden-layers-100000", 4, ("encode", "{victim}", "{data}", "-c", "sign", "--bits", "24", *OUT),
         "--hidden-layers must be at most 64", model_config("cat", hidden_layers=100000)),
    Case("model-d-in-1e9", 4, ("encode", "{victim}", "{data}", "-c", "sign", *OUT), "d_in",
         model_config("rot", d_in=10**9)),
    Case("atoms-r2-100000", 4, ("atoms", "--dim", "64", "--r2", "100000"), "--r2 must be at most 1024"),
    Case("atoms-dim-1e6", 4, ("atoms", "--dim", "1000000", "--bits", "64"), "--dim must be at most 128"),
    Case("atoms-list-too-many", 4, ("atoms", "--dim", "64", "--r2", "1024", "--list"), "--list"),
    Case("rotation-dout-1e9", 4, ("train", "{data}", "-m", "rotation", "--dout", "1000000000", *OUT),
         "--dout must be at most 65536"),
    Case("catalyzer-dint-20000", 4, ("train", "{data}", *CAT[:-4], "--dint", "20000", *OUT), "weights"),
    Case("k-1e9", 4, ("gt", "{data}", "-k", "1000000000", *OUT), "-k must be at most 100000"),
    Case("block-size-1e12", 4, ("gt", "{data}", "--block-size", "1000000000000", *OUT), "--block-size must be at most"),
    Case("lattice-bits-1e9", 4, ("encode", "{pca24}", "{data}", "-c", "lattice", "--bits", "1000000000", *OUT),
         "--bits must be at most 2048"),
    # 5. integrity
    Case("dataset-byte-changed", 5, ("gt", "{victim}", "-k", "1", *OUT), "'train' does not match",
         flip("data", "train")),
    Case("queries-byte-changed", 5, ("search", "{codes}", "{victim}", "-k", "5", *OUT), "'test' does not match",
         flip("data", "test")),
    Case("distance-attribute-edited", 5, ("gt", "{victim}", "-k", "1", *OUT), "attribute 'distance'",
         set_attr("data", "/", "distance", "dot")),
    Case("model-config-edited", 5, ("encode", "{victim}", "{data}", "-c", "sign", *OUT), "attribute 'config'",
         model_config("rot", refingerprint=False, seed=8)),
    Case("model-weight-changed", 5, ("encode", "{victim}", "{data}", "-c", "sign", *OUT),
         "member 'transform/matrix'", flip("rot", "transform/matrix")),
    Case("codes-byte-changed", 5, ("search", "{victim}", "{data}", "-k", "5", *OUT), "'codes' does not match",
         flip("codes", "codes")),
    Case("codes-transform-changed", 5, ("search", "{victim}", "{data}", "-k", "5", *OUT), "model groups",
         flip("codes", "transform/matrix")),
    Case("codec-config-edited", 5, ("search", "{victim}", "{data}", "-k", "5", *OUT), "attribute 'config' of /codec",
         lambda tmp, n: n.update(victim=edit(copy(n, "lcodes", tmp, "victim.h5"), set_config("codec", r2=78)))),
    Case("groundtruth-edited", 5, ("eval", "{results}", "{victim}"), "'neighbors' does not match",
         flip("gt", "neighbors")),
    Case("results-edited", 5, ("eval", "{victim}", "{gt}"), "'neighbors' does not match",
         flip("results", "neighbors")),
    Case("nan-weight-refingerprinted", 5, ("encode", "{victim}", "{data}", "-c", "sign", *OUT), "NaN",
         flip("rot", "transform/matrix", refingerprint=True, value=np.nan)),
    Case("nan-catalyzer-weight", 5, ("encode", "{victim}", "{data}", "-c", "sign", "--bits", "24", *OUT), "NaN",
         flip("cat", "transform/net.0.weight", refingerprint=True, value=np.nan)),
    Case("nan-checkpoint", 5, ("train", "{data}", *CAT, "--resume", "{victim}", *OUT), "NaN", checkpoint_edit(ck_nan)),
    Case("groundtruth-id-negative", 5, ("eval", "{results}", "{victim}"), "negative neighbour id -7",
         flip("gt", "neighbors", refingerprint=True, value=-7)),
    Case("groundtruth-id-1e9", 5, ("eval", "{results}", "{victim}"), "neighbour id 1000000000",
         flip("gt", "neighbors", refingerprint=True, value=10**9)),
    Case("results-id-1e9", 5, ("eval", "{victim}", "{gt}"), "outside -1..599",
         flip("results", "neighbors", refingerprint=True, value=10**9)),
    # 6. numerics
    Case("import-1e20", 6, ("import", "{big}", "--queries", "{q}", *OUT), "row 57", big_values_fvecs),
    Case("hdf5-train-3e19", 6, ("gt", "{victim}", "-k", "1", *OUT), "row 7", big_values_h5("train")),
    Case("hdf5-queries-3e19", 6, ("gt", "{victim}", "-k", "1", *OUT), "row 7", big_values_h5("test")),
    # 8. formerly "internal error"
    Case("dangling-soft-link", 8, ("gt", "{victim}", "-k", "1", *OUT), "a soft link leads nowhere",
         soft_link("train", "/gone")),
    Case("params-not-json", 8, ("encode", "{victim}", "{data}", "-c", "sign", *OUT), "'params' attribute is not valid",
         set_attr("rot", "/", "params", "{not json")),
    Case("inputs-not-json", 8, ("search", "{victim}", "{data}", "-k", "5", *OUT), "'inputs' attribute is not valid",
         set_attr("codes", "/", "inputs", "[{")),
    Case("config-not-json", 8, ("encode", "{victim}", "{data}", "-c", "sign", *OUT), "config",
         set_attr("rot", "transform", "config", "{oops", refingerprint=True)),
    Case("config-not-object", 8, ("encode", "{victim}", "{data}", "-c", "sign", *OUT), "not a JSON object",
         set_attr("rot", "transform", "config", "[1, 2]", refingerprint=True)),
    Case("codes-1d", 8, ("search", "{victim}", "{data}", "-k", "5", *OUT), "codes", codes_1d),
    Case("groundtruth-shape-mismatch", 8, ("eval", "{results}", "{victim}"), "same shape", gt_shape_mismatch),
    Case("non-utf8-file-name", 8, ("gt", "{victim}", "-k", "1", *OUT), "UTF-8", non_utf8_name),
    Case("seed-negative", 8, ("train", "{data}", *CAT, "--seed", "-1", *OUT), "--seed must be at least 0"),
    Case("seed-2-70", 8, ("train", "{data}", *CAT, "--seed", str(2**70), *OUT), "--seed must be at most"),
    Case("checkpoint-bad-json", 8, ("train", "{data}", *CAT, "--resume", "{victim}", *OUT), "not a readable",
         checkpoint_edit(ck_bad_json)),
    Case("checkpoint-truncated-rng", 8, ("train", "{data}", *CAT, "--resume", "{victim}", *OUT), "rng",
         checkpoint_edit(ck_truncated_rng)),
    Case("checkpoint-wrong-weight-shape", 8, ("train", "{data}", *CAT, "--resume", "{victim}", *OUT), "size mismatch for net.0.weight",
         checkpoint_edit(ck_wrong_shape)),
    Case("checkpoint-negative-epoch", 8, ("train", "{data}", *CAT, "--resume", "{victim}", *OUT), "epoch",
         checkpoint_edit(ck_meta(epoch=-3))),
    # 10. smaller
    Case("threads-10000", 10, ("gt", "{data}", "--threads", "10000", *OUT), "--threads must be at most 256"),
    Case("threads-negative", 10, ("gt", "{data}", "--threads", "-3", *OUT), "--threads must be at least 1"),
    Case("lr-negative", 10, ("train", "{data}", *CAT, "--lr", "-1", *OUT), "--lr must be greater than 0"),
    Case("bits-zero-hint", 10, ("train", "{data}", "-m", "lsh", "--bits", "0", *OUT), "use --bits 8"),
]


@dataclass
class Outcome:
    rc: int = -1
    stdout: str = ""
    stderr: str = ""
    names: dict | None = None
    seconds: float = 0.0
    skip: str | None = None


@pytest.fixture(scope="module")
def outcomes(env, tmp_path_factory) -> dict[str, Outcome]:
    results: dict[str, Outcome] = {}
    for case in CASES:
        o = results[case.id] = Outcome()
        tmp = tmp_path_factory.mktemp(case.id)
        names = {**env, "tmp": tmp, "out": tmp / "out.h5"}
        try:
            if case.setup:
                case.setup(tmp, names)
        except pytest.skip.Exception as e:
            o.skip = str(e)
            continue
        o.names = names
        t0 = time.perf_counter()
        o.rc, o.stdout, o.stderr = run_cli(*[str(a).format(**names) for a in case.argv])
        o.seconds = time.perf_counter() - t0
    report = os.environ.get("VECSPREAD_HOSTILE_REPORT")  # a table of what each case produced, for the record
    if report:
        rows = [{"id": c.id, "group": c.group, "rc": results[c.id].rc, "seconds": round(results[c.id].seconds, 3),
                 "stderr": results[c.id].stderr.strip().replace(str(tmp_path_factory.getbasetemp()), "<tmp>"),
                 "skip": results[c.id].skip} for c in CASES]
        Path(report).write_text(json.dumps(rows, indent=1))
    return results


def test_enough_hostile_cases():
    assert len(CASES) >= 60 and len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_hostile_case(outcomes, case):
    o = outcomes[case.id]
    if o.skip:
        pytest.skip(o.skip)
    names = o.names
    if case.rc == 0:
        assert o.rc == 0, o.stderr
    else:
        line = assert_one_line_error(o.rc, o.stderr, case.rc)
        needle = case.needle.format(**names)
        assert needle in line, f"the message should say {needle!r}: {line}"
        assert o.stdout == "", o.stdout[:200]
        assert not Path(names["out"]).exists(), "a refused command left its output"
    assert not partial_files(names["tmp"]), os.listdir(names["tmp"])
    for p in Path(names["tmp"]).iterdir():  # no output of any case holds a byte of the secret file
        if p.is_file() and not stat.S_ISFIFO(p.stat().st_mode):
            assert SECRET[:16] not in p.read_bytes(), f"{p} holds bytes of another file"
    for key in ("pipe",):
        if key in names:
            assert stat.S_ISFIFO(os.stat(names[key]).st_mode), "the named pipe was replaced"
    if "dev" in names:
        assert stat.S_ISCHR(os.stat(names["dev"]).st_mode), "the device node was replaced"


def test_dev_null_is_still_a_device():
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_bounds_are_checked_before_work(outcomes):
    """The cases of class 4 are refused before anything big is built or read (generous bound: the
    refusals take milliseconds; the unbounded versions took minutes or never ended)."""
    slow = {c.id: round(outcomes[c.id].seconds, 1) for c in CASES if c.group == 4 and outcomes[c.id].seconds > 20}
    assert not slow, slow


# --------------------------------------------------------------------------------------------
# `vecspread verify` on every artifact kind


KINDS = {"dataset": ("data", "train"), "groundtruth": ("gt", "neighbors"), "model": ("rot", "transform/matrix"),
         "catalyzer model": ("cat", "transform/net.0.weight"), "codes": ("codes", "codes"),
         "results": ("results", "distances"), "checkpoint": ("ck", "model/net.0.weight")}


@pytest.mark.parametrize("kind", KINDS)
def test_verify_passes_clean_and_names_a_changed_member(env, tmp_path, kind):
    key, member = KINDS[kind]
    rc, out, err = run_cli("verify", env[key])
    assert rc == 0 and out.startswith("ok"), (out, err)
    names = {**env}
    flip(key, member)(tmp_path, names)
    rc, out, err = run_cli("verify", env[key], names["victim"])
    assert rc == 1, (out, err)
    assert f"member '{member}' does not match" in out, out
    assert "failed verification" in err and len(err.splitlines()) == 1, err


@pytest.mark.parametrize("kind", ["model", "codes", "checkpoint", "dataset"])
def test_verify_names_a_changed_attribute(env, tmp_path, kind):
    key, where, attr, value = {
        "model": ("rot", "transform", "config", None), "codes": ("lcodes", "codec", "config", None),
        "checkpoint": ("ck", "/", "vecspread_kind", "model"), "dataset": ("data", "/", "distance", "dot"),
    }[kind]
    victim = copy(env, key, tmp_path, "victim.h5")

    def change(f):
        text = f[where].attrs[attr]
        f[where].attrs[attr] = value if value is not None else text.replace("1", "2", 1) if "1" in text else text + " "
    edit(victim, change)
    rc, out, _ = run_cli("verify", victim)
    assert rc == 1 and f"attribute '{attr}' of /{where.strip('/')}" in out.replace("of //", "of /"), out


def test_verify_reports_files_it_cannot_vouch_for(env, tmp_path):
    ann = ann_file(tmp_path / "ann.hdf5", train=vectors(50), test=vectors(5))
    text = tmp_path / "notes.txt"
    text.write_text("not hdf5")
    rc, out, err = run_cli("verify", ann, text, tmp_path / "missing.h5", "--json")
    report = json.loads(out)
    status = {Path(r["path"]).name: r["status"] for r in report["files"]}
    assert status == {"ann.hdf5": "unverified", "notes.txt": "failed", "missing.h5": "failed"}, report
    assert rc == 1 and report["failed"] == 2 and report["unverified"] == 1


def test_verify_flags_a_member_stored_elsewhere(env, tmp_path):
    names = {**env}
    unused_members(tmp_path, names)
    rc, out, _ = run_cli("verify", names["victim"])
    assert rc == 1 and "another file" in out, out


# --------------------------------------------------------------------------------------------
# 3. a full disk: every writing stage, one line, exit 2, nothing left


def _file_size_limit(nbytes: int) -> Callable[[], None]:
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, nbytes))
    return limit


FULL_DISK = {
    "import": ("import", "{base}", "--queries", "{queries}"),
    "gt": ("gt", "{data}", "-k", "10"),
    "train-pca": ("train", "{data}", "-m", "pca"),
    "train-catalyzer": ("train", "{data}", *CAT),
    "checkpoint": ("train", "{data}", *CAT, "--checkpoint", "{tmp}/ck.h5"),
    "encode": ("encode", "{rot}", "{data}", "-c", "sign"),
    "search": ("search", "{codes}", "{data}", "-k", "10"),
    "inspect-json": ("inspect", "{rot}", "{data}", "--nq", "5", "--sample", "100", "-k", "5"),
}


@pytest.mark.parametrize("stage", FULL_DISK)
def test_full_disk_is_one_line_and_leaves_nothing(env, tmp_path, stage):
    names = {**env, "tmp": tmp_path}
    out = tmp_path / "out.h5"
    argv = [str(a).format(**names) for a in FULL_DISK[stage]] + ["-o", str(out)]
    proc = subprocess.run(cli_command(*argv), capture_output=True, text=True, env=ONE_THREAD, timeout=300,
                          stdin=subprocess.DEVNULL, preexec_fn=_file_size_limit(2048))
    line = assert_one_line_error(proc.returncode, proc.stderr.replace(_log_lines(proc.stderr), ""))
    assert "cannot be written" in line or "file too large" in line.lower(), line
    assert os.listdir(tmp_path) == [], os.listdir(tmp_path)


def _log_lines(stderr: str) -> str:
    """The training log lines before the error (progress, not errors)."""
    return "".join(line + "\n" for line in stderr.splitlines() if not line.startswith("vecspread: error:"))


# --------------------------------------------------------------------------------------------
# 7. signals


TRAP = """
import os, signal, sys
class Trap:  # sends the signal to this process while vecspread.cli imports typer: mid start-up
    def find_spec(self, name, path, target=None):
        if name == "typer":
            os.kill(os.getpid(), {signum})
        return None
sys.meta_path.insert(0, Trap())
sys.argv = ["vecspread", "gt", {data!r}, "-k", "1", "-o", {out!r}]
from vecspread.entry import main
main()
"""


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_during_start_up_is_one_line(env, tmp_path, sig, code):
    out = tmp_path / "out.h5"
    script = TRAP.format(signum=int(sig), data=str(env["data"]), out=str(out))
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=ONE_THREAD,
                          timeout=120, stdin=subprocess.DEVNULL)
    line = assert_one_line_error(proc.returncode, proc.stderr, code)
    assert ("terminated" if sig == signal.SIGTERM else "interrupted") in line
    assert os.listdir(tmp_path) == []


@pytest.fixture(scope="module")
def slow_training_set(tmp_path_factory) -> Path:
    """Enough vectors for a catalyzer epoch to last several seconds."""
    d = tmp_path_factory.mktemp("slow")
    write_vectors(str(d / "b.fvecs"), vectors(4000, 32, seed=3))
    write_vectors(str(d / "q.fvecs"), vectors(20, 32, seed=4))
    cli_ok("import", d / "b.fvecs", "--queries", d / "q.fvecs", "-o", d / "data.h5")
    return d / "data.h5"


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_mid_training_is_one_line_and_leaves_nothing(slow_training_set, tmp_path, sig, code):
    out = tmp_path / "out.h5"
    proc = subprocess.Popen(cli_command("train", slow_training_set, "-m", "catalyzer", "--epochs", "50", "--dint", "256",
                                        "--val-size", "0", "--threads", "1", "-o", out),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                            env=ONE_THREAD)
    first = proc.stderr.readline()  # the run's first log line: training has started
    proc.send_signal(sig)
    rest = proc.stderr.read()
    proc.wait(timeout=120)
    assert first.startswith("catalyzer:"), first + rest
    line = assert_one_line_error(proc.returncode, rest, code)
    assert "no output was written" in line
    assert os.listdir(tmp_path) == []


# --------------------------------------------------------------------------------------------
# 9. partial files of other writers


def test_live_partial_of_another_namespace_survives_a_run_and_a_dead_ones_does_not(env, tmp_path):
    out = tmp_path / "gt.h5"
    from vecspread.io.owners import machine_id, pid_namespace

    dead = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True).stdout)
    other_ns = partial_path(out, f"{dead}.{machine_id()}-{pid_namespace() + 1}-5")
    other_host = partial_path(out, f"{dead}.{'f' * 12}-{pid_namespace()}-5")
    stale = partial_path(out, f"{dead}.{machine_id()}-{pid_namespace()}-5")
    for p in (other_ns, other_host, stale):
        p.write_bytes(b"in progress elsewhere")
    cli_ok("gt", env["data"], "-k", 5, "-o", out)
    assert other_ns.exists() and other_host.exists() and not stale.exists()


# --------------------------------------------------------------------------------------------
# 10. warnings stay out of the one line; reproducibility is recorded


def test_thread_count_is_recorded_with_a_neural_model(env):
    with h5py.File(env["cat"], "r") as f:
        assert json.loads(f.attrs["params"])["threads"] == 1


# --------------------------------------------------------------------------------------------
# the fuzz test: damaged real artifacts never give a traceback, an internal error or a hang


#: a longer run: VECSPREAD_FUZZ_CASES=2000 VECSPREAD_FUZZ_SEED=7 pytest tests/cli/test_hostile.py -k fuzz
FUZZ_SEED = int(os.environ.get("VECSPREAD_FUZZ_SEED", 13))
FUZZ_CASES = int(os.environ.get("VECSPREAD_FUZZ_CASES", 48))
FUZZ_SECONDS = 180 * max(1, FUZZ_CASES // 48)


def _mutate(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    how = rng.choice(["truncate", "flip", "flip", "zero-block"])
    if how == "truncate":
        cut = rng.randrange(1, len(data))
        return f"truncate@{cut}", data[:cut]
    b = bytearray(data)
    if how == "flip":
        for _ in range(rng.randint(1, 8)):
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
        return "flip", bytes(b)
    start = rng.randrange(len(b))
    b[start : start + 512] = bytes(min(512, len(b) - start))
    return f"zero@{start}", bytes(b)


def _attr_edit(path: Path, rng: random.Random) -> str:
    with h5py.File(path, "r+") as f:
        objs = [f] + [f[n] for n in fingerprints.dataset_names(f)] + [f[k] for k in f if isinstance(f[k], h5py.Group)]
        obj = rng.choice(objs)
        keys = list(obj.attrs)
        if not keys:
            obj.attrs["x"] = "y"
            return f"add {obj.name}@x"
        key = rng.choice(keys)
        value = obj.attrs[key]
        obj.attrs[key] = rng.choice(["", "{", "[]", "null", "1e999", str(value)[:-1], -1])
        return f"edit {obj.name}@{key}"


def _fuzz_command(kind: str, victim: Path, env: dict, out: Path) -> list[str]:
    return {
        "data": ["gt", victim, "-k", "5", "-o", out],
        "gt": ["eval", env["results"], victim],
        "rot": ["encode", victim, env["data"], "-c", "sign", "-o", out],
        "cat": ["encode", victim, env["data"], "-c", "sign", "--bits", "24", "-o", out],
        "codes": ["search", victim, env["data"], "-k", "5", "-o", out],
        "lcodes": ["search", victim, env["data"], "-k", "5", "-o", out],
        "results": ["eval", victim, env["gt"]],
        "ck": ["train", env["data"], *CAT, "--resume", victim, "-o", out],
    }[kind]


def test_fuzz_damaged_artifacts(env, tmp_path, monkeypatch):
    from vecspread.io import preflight

    monkeypatch.setattr(preflight, "BASE_SECONDS", 3.0)  # a file HDF5 loops on costs 3 s, not 10
    rng = random.Random(FUZZ_SEED)
    kinds = ["data", "gt", "rot", "cat", "codes", "lcodes", "results", "ck"]
    t_end = time.monotonic() + FUZZ_SECONDS
    seen = []
    for i in range(FUZZ_CASES):
        if time.monotonic() > t_end:
            break
        kind = kinds[i % len(kinds)]
        victim = tmp_path / f"fuzz{i}.h5"
        if i % 3 == 2:
            shutil.copy(env[kind], victim)
            how = _attr_edit(victim, rng)
        else:
            how, data = _mutate(Path(env[kind]).read_bytes(), rng)
            victim.write_bytes(data)
        out = tmp_path / f"out{i}.h5"
        rc, stdout, stderr = run_cli(*_fuzz_command(kind, victim, env, out))
        seen.append((kind, how, rc))
        assert "Traceback" not in stderr, (kind, how, stderr)
        assert rc in (0, 1, 2), (kind, how, rc, stderr)  # never 3 (internal error) nor a crash
        if rc == 2:
            assert len(stderr.strip().splitlines()) == 1 or stderr.count("vecspread: error:") == 1, (kind, how, stderr)
        # a damaged input never yields an output unless the damage missed everything the stage reads
        if rc != 0:
            assert not out.exists()
        rc_v, out_v, err_v = run_cli("verify", victim)
        assert rc_v in (0, 1) and "Traceback" not in err_v, (kind, how, out_v, err_v)
    assert len(seen) >= 16, f"only {len(seen)} fuzz cases ran within {FUZZ_SECONDS} s"
