"""Class labels in the data contract: ``import --train-labels/--test-labels/--learn-labels`` (npy or
ivecs) store ``<set>_labels`` (n,) int64; ``Dataset.labels`` reads them back, checked."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import assert_one_line_error, cli_ok, run_cli
from vecspread.errors import InputError
from vecspread.io.datasets import Dataset
from vecspread.io.formats import read_labels, write_vectors


@pytest.fixture()
def files(tmp_path, syn):
    rng = np.random.default_rng(0)
    y_train = rng.integers(0, 7, len(syn.xb))
    y_test = rng.integers(0, 7, len(syn.xq))
    np.save(tmp_path / "train_labels.npy", y_train)
    write_vectors(str(tmp_path / "test_labels.ivecs"), y_test.reshape(-1, 1).astype(np.int32))
    return tmp_path, y_train, y_test


def test_labels_are_imported_and_read_back(files, syn):
    d, y_train, y_test = files
    out = d / "labelled.h5"
    cli_ok("import", syn.base, "--queries", syn.queries, "--train-labels", d / "train_labels.npy",
           "--test-labels", d / "test_labels.ivecs", "-o", out)
    with Dataset(out) as ds:
        assert ds.has_labels("train") and ds.has_labels("test") and not ds.has_labels("learn")
        assert np.array_equal(ds.labels("train"), y_train) and ds.labels("train").dtype == np.int64
        assert np.array_equal(ds.labels("test"), y_test)
        with pytest.raises(InputError, match="has no class labels"):
            ds.labels("learn")
    rc, _, err = run_cli("verify", out)
    assert rc == 0, err


def test_datasets_without_labels_are_unaffected(syn):
    with Dataset(syn.h5) as ds:
        assert not ds.has_labels("train")


@pytest.mark.parametrize("make,message", [
    (lambda d, n: np.save(d / "bad.npy", np.zeros(n - 1, np.int64)), "labels for the"),
    (lambda d, n: np.save(d / "bad.npy", np.full(n, -1)), "is negative"),
    (lambda d, n: np.save(d / "bad.npy", np.zeros((n, 2), np.int64)), "1-D integer array"),
    (lambda d, n: np.save(d / "bad.npy", np.zeros(n, np.float32)), "1-D integer array"),
])
def test_bad_label_files_are_one_line(make, message, syn, tmp_path):
    make(tmp_path, len(syn.xb))
    rc, _, err = run_cli("import", syn.base, "--queries", syn.queries, "--train-labels", tmp_path / "bad.npy",
                         "-o", tmp_path / "out.h5")
    assert message in assert_one_line_error(rc, err)
    assert not (tmp_path / "out.h5").exists()


def test_learn_labels_need_a_learn_set(files, syn):
    d, _, _ = files
    rc, _, err = run_cli("import", syn.base, "--queries", syn.queries, "--learn-labels", d / "train_labels.npy",
                         "-o", d / "out.h5")
    assert "the dataset has no learn set (give --learn)" in assert_one_line_error(rc, err)


def test_read_labels_accepts_a_column_and_refuses_many_components(tmp_path):
    np.save(tmp_path / "col.npy", np.arange(5).reshape(5, 1).astype(np.int32))
    assert np.array_equal(read_labels(str(tmp_path / "col.npy")), np.arange(5))
    write_vectors(str(tmp_path / "two.ivecs"), np.zeros((5, 2), np.int32))
    with pytest.raises(InputError, match="one integer per row"):
        read_labels(str(tmp_path / "two.ivecs"))
