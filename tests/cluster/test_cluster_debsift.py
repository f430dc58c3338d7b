"""The acceptance run on real data: debsift200k with ``--cluster local:2`` gives the one-process bytes —
ground truth, the codes of every codec after a catalyzer, and the search results of each — with one
thread per task and in the one-process run (faiss's PQ-family encoders settle float near-ties by thread
count: with 2 threads against 1, one OPQ code in 200,000 differs)."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from conftest import cli_ok

pytest.importorskip("distributed", reason="the --cluster runs need dask and distributed")

CODECS = [("sign", ["--bits", 32]), ("lattice", ["--bits", 64]), ("pq", ["--bits", 64]), ("opq", ["--bits", 64]),
          ("lsq", ["--bits", 32, "--train-iters", 2]), ("l2lsh", ["--bits", 64])]


def _same(a, b, *names):
    with h5py.File(a) as fa, h5py.File(b) as fb:
        for name in names:
            assert np.array_equal(fa[name][()], fb[name][()]), f"{name} of {a} and {b} differ"


@pytest.fixture(scope="module")
def debsift(shared_data, tmp_path_factory):
    data = shared_data / "debsift200k.h5"
    d = tmp_path_factory.mktemp("debsift-cluster")
    cli_ok("-q", "train", data, "--method", "catalyzer", "--dout", 32, "--dint", 256, "--epochs", 1,
           "--max-train", 5000, "-o", d / "cat.h5")
    return data, d


def test_debsift_ground_truth_on_local_2_is_the_one_process_one(debsift):
    data, d = debsift
    cli_ok("-q", "gt", data, "-k", 100, "--threads", 1, "-o", d / "one.gt.h5")
    cli_ok("-q", "gt", data, "-k", 100, "--threads", 1, "--cluster", "local:2", "-o", d / "many.gt.h5")
    _same(d / "one.gt.h5", d / "many.gt.h5", "neighbors", "distances")


def test_debsift_codes_and_results_on_local_2_are_the_one_process_ones(debsift):
    data, d = debsift
    for codec, opts in CODECS:
        one, many = d / f"{codec}.one.h5", d / f"{codec}.many.h5"
        common = [d / "cat.h5", data, "--codec", codec, *opts, "--threads", 1]
        cli_ok("-q", "encode", *common, "-o", one)
        cli_ok("-q", "encode", *common, "--cluster", "local:2", "-o", many)
        _same(one, many, "codes")
        cli_ok("-q", "search", one, data, "-k", 100, "--threads", 1, "-o", d / f"{codec}.one.res.h5")
        cli_ok("-q", "search", many, data, "-k", 100, "--threads", 1, "--cluster", "local:2",
               "-o", d / f"{codec}.many.res.h5")
        _same(d / f"{codec}.one.res.h5", d / f"{codec}.many.res.h5", "neighbors", "distances")
