"""Build multiMNIST (seed 000's dataset) from the real UCI handwritten digits that scikit-learn ships.

    python benchmarks/make_multimnist.py -k 3 -o multimnist1k.h5            # 1,000 classes
    python benchmarks/make_multimnist.py -k 4 --per-class 30 --test-per-class 3 -o multimnist10k.h5

What it builds: an image of a k-digit number is k handwritten digit images placed side by side, and its
class is the number (10^k classes; leading zeros count: "007" is class 7 of 1,000). The digit images
are the 1,797 UCI ML hand-written digits (8 × 8, values 0..16) of ``sklearn.datasets.load_digits``, read
from scikit-learn's own copy (no download). They are split once, per digit and seeded, into a training
pool (80 %) and a test pool (20 %): no digit image appears in both sets.

- ``train`` (10^k · per_class, 64k) uint8: every class ``--per-class`` times, each digit position drawn
  uniformly from the training pool's images of that digit; ``train_labels`` (int64) the numbers;
- ``test`` (10^k · test_per_class, 64k) uint8 and ``test_labels``, from the test pool;
- ``train_digit_images``, ``test_digit_images`` (n, k) int32: which ``load_digits`` image each position
  shows (provenance, and the disjointness check);
- root attrs ``distance`` = "euclidean", ``classes`` = 10^k, ``digits`` = k; ``params`` say how it was built.

An image is the k 8 × 8 digits concatenated along the width, flattened row by row (pixel (r, c) of the
8 × 8k image is coordinate 8k·r + c). The seed's own multiMNIST used 28 × 28 MNIST digits, which are
not on this machine. The tests' bundled sample is ``tests/data/multimnist100.h5``, made with
``-k 2 --per-class 20 --test-per-class 5``.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

TEST_SHARE = 0.2
SOURCE = "sklearn.datasets.load_digits: the UCI ML hand-written digits (1,797 images, 8 x 8, values 0..16)"


def split_pools(digit_labels: np.ndarray, seed: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per digit 0..9: the ids of its training-pool and test-pool images (disjoint, seeded, 20 % test)."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for digit in range(10):
        ids = rng.permutation(np.flatnonzero(digit_labels == digit))
        n_test = max(1, int(round(TEST_SHARE * len(ids))))
        test.append(np.sort(ids[:n_test]))
        train.append(np.sort(ids[n_test:]))
    return train, test


def compose(images: np.ndarray, pools: list[np.ndarray], k: int, per_class: int,
            rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every one of the 10^k classes ``per_class`` times: X (n, 64k) uint8, labels (n,) int64 and the digit
    image ids (n, k) int32 (position 0 is the leftmost, most significant digit)."""
    classes = np.repeat(np.arange(10**k, dtype=np.int64), per_class)
    digits = (classes[:, None] // 10 ** np.arange(k - 1, -1, -1)) % 10
    ids = np.empty(digits.shape, np.int32)
    for digit in range(10):
        where = digits == digit
        ids[where] = rng.choice(pools[digit], size=int(where.sum()))
    side = images[ids]  # (n, k, 8, 8)
    x = side.transpose(0, 2, 1, 3).reshape(len(classes), -1)  # rows of the 8 x 8k image
    return x.astype(np.uint8), classes, ids


def build(output: str, k: int, per_class: int, test_per_class: int, seed: int) -> dict:
    from sklearn.datasets import load_digits

    from vecspread.io.artifacts import write_artifact

    digits = load_digits()
    images = np.asarray(digits.images, np.float64).round().astype(np.uint8)  # (1797, 8, 8), 0..16
    pool_train, pool_test = split_pools(np.asarray(digits.target), seed)
    rng = np.random.default_rng(seed + 1)
    xb, yb, ib = compose(images, pool_train, k, per_class, rng)
    xq, yq, iq = compose(images, pool_test, k, test_per_class, rng)
    params = {"k": k, "per_class": per_class, "test_per_class": test_per_class, "seed": seed, "source": SOURCE,
              "test_share_of_digit_images": TEST_SHARE}
    with write_artifact(output, "dataset", params=params, attrs={"distance": "euclidean", "classes": 10**k, "digits": k,
                                                                 "source": json.dumps(params)},
                        expected_bytes=xb.nbytes + xq.nbytes + 12 * (len(xb) + len(xq))) as f:
        f.create_dataset("train", data=xb)
        f.create_dataset("train_labels", data=yb)
        f.create_dataset("train_digit_images", data=ib)
        f.create_dataset("test", data=xq)
        f.create_dataset("test_labels", data=yq)
        f.create_dataset("test_digit_images", data=iq)
    return {"output": output, "classes": 10**k, "d": xb.shape[1], "train": len(xb), "test": len(xq),
            "train_pool_images": int(sum(len(p) for p in pool_train)),
            "test_pool_images": int(sum(len(p) for p in pool_test))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-k", type=int, default=3, help="digits per number: 10^k classes (default 3)")
    ap.add_argument("--per-class", type=int, default=100, help="training images per class (default 100)")
    ap.add_argument("--test-per-class", type=int, default=10, help="test images per class (default 10)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("-o", "--output", required=True)
    a = ap.parse_args()
    if not 1 <= a.k <= 6:
        raise SystemExit("-k must be 1 to 6 (10 to 1,000,000 classes)")
    print(json.dumps(build(a.output, a.k, a.per_class, a.test_per_class, a.seed)))


if __name__ == "__main__":
    main()
