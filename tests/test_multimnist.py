"""multiMNIST built from the real UCI digits (``benchmarks/make_multimnist.py``) and its bundled sample."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from vecspread.io.datasets import Dataset

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "tests" / "data" / "multimnist100.h5"


def _builder():
    spec = importlib.util.spec_from_file_location("make_multimnist", ROOT / "benchmarks" / "make_multimnist.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_pools_are_disjoint_and_cover_every_digit_image():
    labels = np.random.default_rng(0).integers(0, 10, 500)
    train, test = _builder().split_pools(labels, seed=3)
    for digit in range(10):
        assert not set(train[digit]) & set(test[digit])
        assert sorted([*train[digit], *test[digit]]) == np.flatnonzero(labels == digit).tolist()


def test_compose_places_the_digits_side_by_side():
    images = np.arange(30 * 64, dtype=np.int64).reshape(30, 8, 8) % 17
    pools = [np.array([3 * d, 3 * d + 1, 3 * d + 2]) for d in range(10)]
    x, y, ids = _builder().compose(images, pools, 3, 2, np.random.default_rng(1))
    assert x.shape == (2000, 192) and y.tolist() == np.repeat(np.arange(1000), 2).tolist()
    for row, label, used in zip(x[::97], y[::97], ids[::97]):
        digits = [int(c) for c in f"{label:03d}"]
        assert [int(i) // 3 for i in used] == digits  # each position shows an image of its digit
        image = row.reshape(8, 24)
        for pos in range(3):
            assert np.array_equal(image[:, 8 * pos : 8 * pos + 8], images[used[pos]])


def test_the_bundled_sample_is_a_labelled_dataset_with_disjoint_images():
    with Dataset(SAMPLE) as ds:
        assert (ds.size("train"), ds.size("test"), ds.d) == (2000, 500, 128)
        y_train, y_test = ds.labels("train"), ds.labels("test")
        assert sorted(set(y_train.tolist())) == list(range(100)) == sorted(set(y_test.tolist()))
        train_images = set(ds.art.read("train_digit_images").ravel().tolist())
        test_images = set(ds.art.read("test_digit_images").ravel().tolist())
        assert not train_images & test_images


def test_the_sample_shows_the_real_uci_digits():
    datasets = pytest.importorskip("sklearn.datasets", reason="checks the images against scikit-learn's copy")
    images = np.asarray(datasets.load_digits().images).round().astype(np.uint8)
    with Dataset(SAMPLE) as ds:
        x, ids, y = ds.art.read("train")[:50], ds.art.read("train_digit_images")[:50], ds.labels("train")[:50]
    digits = datasets.load_digits().target
    for row, used, label in zip(x, ids, y):
        assert [int(digits[i]) for i in used] == [label // 10, label % 10]
        assert np.array_equal(row.reshape(8, 16), np.hstack([images[i] for i in used]))
