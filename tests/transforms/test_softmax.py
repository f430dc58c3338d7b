"""The softmax method (seed 000): a supervised classifier whose class vectors are searched by inner product."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch.nn as nn

from conftest import assert_one_line_error, cli_ok, fit_method, run_cli
from vecspread.errors import ConfigError, InputError

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "multimnist100.h5"


def _clusters(n: int = 1200, classes: int = 8, d: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = 4 * rng.standard_normal((classes, d))
    y = rng.integers(0, classes, n)
    return (centres[y] + rng.standard_normal((n, d))).astype(np.float32), y


def test_the_class_search_is_the_softmax_argmax_and_learns():
    x, y = _clusters()
    t, _ = fit_method("softmax", x, labels=y, epochs=10, batch_size=32, dint=64, dout=16, seed=1)
    w = t.class_vectors()
    assert w.shape == (8, 16)
    reps = t.apply(x[:300])
    brute = np.array([max(range(8), key=lambda c: float(np.dot(r, w[c]))) for r in reps])
    assert np.array_equal(t.classify(x[:300]), brute)
    assert (t.classify(x) == y).mean() > 0.9
    last = t.history_[-1]
    assert {"accuracy", "mean_correct_angle", "rep_norm_mean", "rep_norm_spread", "class_norm_mean",
            "balance_hyperplane", "balance_cross_polytope"} <= set(last)
    assert last["balance_hyperplane"] >= 1 and last["balance_cross_polytope"] >= 1
    assert last["accuracy"] > 0.9 and 0 <= last["mean_correct_angle"] < 90


def test_the_three_changes_build_the_networks_they_name():
    x, y = _clusters(400)
    kinds = lambda t: [type(m).__name__ for m in t.net_.net][-3:]  # noqa: E731
    std, _ = fit_method("softmax", x, labels=y, epochs=1, dint=32, dout=8, hidden_layers=1)
    bn, _ = fit_method("softmax", x, labels=y, epochs=1, dint=32, dout=8, hidden_layers=1, bn_before_softmax=True)
    swap, _ = fit_method("softmax", x, labels=y, epochs=1, dint=32, dout=8, hidden_layers=1, bn_before_softmax=True,
                         relu_bn_order="swap")
    unit, _ = fit_method("softmax", x, labels=y, epochs=1, dint=32, dout=8, unit_class_vectors=True)
    assert kinds(std) == ["ReLU", "Linear", "ReLU"]
    assert kinds(bn) == ["Linear", "BatchNorm1d", "ReLU"] and kinds(swap) == ["Linear", "ReLU", "BatchNorm1d"]
    assert np.allclose(np.linalg.norm(unit.class_vectors(), axis=1), 1, atol=1e-5)
    assert not np.allclose(np.linalg.norm(std.class_vectors(), axis=1), 1, atol=1e-3)
    assert all(not isinstance(m, nn.Linear) or m.bias is None for m in [std.net_.classes])


def test_refusals():
    x, y = _clusters(200)
    with pytest.raises(ConfigError, match="give --bn-before-softmax too"):
        fit_method("softmax", x, labels=y, relu_bn_order="swap")
    with pytest.raises(ConfigError, match="softmax is supervised"):
        fit_method("softmax", x)
    with pytest.raises(InputError, match="labels for 200 training vectors"):
        fit_method("softmax", x, labels=y[:10])


def test_train_on_the_bundled_multimnist_sample(tmp_path):
    out = tmp_path / "softmax.h5"
    cli_ok("-q", "train", SAMPLE, "--method", "softmax", "--epochs", 3, "--dint", 128, "--dout", 32,
           "--bn-before-softmax", "--unit-class-vectors", "-o", out)
    import vecspread

    t = vecspread.load_transform(str(out))
    with h5py.File(out) as f:
        params = json.loads(f.attrs["params"])
    assert params["classes"] == 100 and len(params["history"]) == 3 and "accuracy" in params["history"][-1]
    from vecspread.io.datasets import Dataset

    with Dataset(SAMPLE) as ds:
        xq = ds.read("test")
    reps, w = t.apply(xq), t.class_vectors()
    assert reps.shape == (500, 32) and w.shape == (100, 32)
    assert np.array_equal(t.classify(xq), np.argmax(reps @ w.T, axis=1))


def test_a_dataset_without_labels_is_one_line(syn, tmp_path):
    rc, _, err = run_cli("-q", "train", syn.h5, "--method", "softmax", "-o", tmp_path / "m.h5")
    assert "has no class labels" in assert_one_line_error(rc, err)


def test_seeded_runs_repeat_bit_for_bit():
    x, y = _clusters(300)
    a, _ = fit_method("softmax", x, labels=y, epochs=2, dint=32, dout=8, seed=5)
    b, _ = fit_method("softmax", x, labels=y, epochs=2, dint=32, dout=8, seed=5)
    assert np.array_equal(a.class_vectors(), b.class_vectors()) and np.array_equal(a.apply(x), b.apply(x))


def test_the_class_search_end_to_end(tmp_path):
    """encode indexes the class vectors, search answers with classes, gt --model is the exact softmax's
    answer (brute-force argmax of the inner products), eval measures the index against it."""
    model, gt, codes, res = (tmp_path / n for n in ("m.h5", "gt.h5", "codes.h5", "res.h5"))
    cli_ok("-q", "train", SAMPLE, "--method", "softmax", "--epochs", 4, "--batch-size", 64, "--dout", 32,
           "--bn-before-softmax", "--unit-class-vectors", "-o", model)
    cli_ok("-q", "gt", SAMPLE, "--model", model, "-k", 10, "-o", gt)
    import vecspread
    from vecspread.io.datasets import Dataset

    t = vecspread.load_transform(str(model))
    with Dataset(SAMPLE) as ds:
        reps = t.apply(ds.read("test"))
    scores = reps @ t.class_vectors().T
    with h5py.File(gt) as f:
        gt_I, gt_D = f["neighbors"][()], f["distances"][()]
    assert np.array_equal(gt_I[:, 0], np.argmax(scores, axis=1))
    assert np.allclose(gt_D, -np.sort(scores, axis=1)[:, ::-1][:, :10], atol=1e-4)
    cli_ok("-q", "encode", model, SAMPLE, "--codec", "lattice", "--bits", 64, "-o", codes)
    with h5py.File(codes) as f:
        assert f["codes"].shape[0] == 100 and json.loads(f.attrs["params"])["database"] == "class vectors"
    cli_ok("-q", "search", codes, SAMPLE, "-k", 10, "-o", res)
    with h5py.File(res) as f:
        assert f["neighbors"].shape == (500, 10) and f["neighbors"][()].max() < 100
    report = json.loads(cli_ok("eval", res, gt, "--at", "1,10", "--json"))
    assert report["recall"]["10"] > 0.9 and report["recall"]["1"] > 0.5
    with Dataset(SAMPLE) as ds:
        labels = ds.labels("test")
    with h5py.File(res) as f:
        first = f["neighbors"][:, 0]
    right = gt_I[:, 0] == labels
    assert report["class_search"] == {"accuracy": pytest.approx(right.mean()), "right": int(right.sum()),
                                      "relative_accuracy": pytest.approx((first[right] == gt_I[right, 0]).mean())}
    assert "relative accuracy of the index" in cli_ok("eval", res, gt, "--at", "1")


def test_flat_class_vectors_searched_by_lsh_and_annoy(tmp_path):
    """encode --codec flat keeps the float class vectors with metric dot (auto); --lsh and --annoy-trees
    probing everything return the exact softmax's classes; fewer probes fewer candidates."""
    model, gt, flat = tmp_path / "m.h5", tmp_path / "gt.h5", tmp_path / "flat.h5"
    cli_ok("-q", "train", SAMPLE, "--method", "softmax", "--epochs", 2, "--batch-size", 64, "--dout", 16,
           "--unit-class-vectors", "-o", model)
    cli_ok("-q", "gt", SAMPLE, "--model", model, "-k", 5, "-o", gt)
    cli_ok("-q", "encode", model, SAMPLE, "--codec", "flat", "-o", flat)
    with h5py.File(flat) as f:
        assert f["codes"].shape == (100, 64)
    with h5py.File(gt) as f:
        exact = f["neighbors"][()]
    runs = {"exact": [], "lsh-all": ["--lsh", "crosspolytope", "--lsh-tables", 3, "--lsh-hashes", 1, "--lsh-probes", 96],
            "lsh-few": ["--lsh", "hyperplane", "--lsh-tables", 2], "annoy-all": ["--annoy-trees", 3, "--annoy-search-k", 100000]}
    found = {}
    for name, options in runs.items():
        out = tmp_path / f"{name}.h5"
        cli_ok("-q", "search", flat, SAMPLE, "-k", 5, *options, "-o", out)
        with h5py.File(out) as f:
            found[name] = f["neighbors"][()]
            found[name + ":attrs"] = dict(f.attrs)
    for name in ("exact", "lsh-all", "annoy-all"):
        assert np.array_equal(found[name][:, 0], exact[:, 0]), name
    assert found["lsh-all:attrs"]["mean_candidates"] == 100
    assert found["lsh-few:attrs"]["mean_candidates"] < 100


def test_gt_model_needs_a_softmax_model(pipeline, tmp_path):
    rc, _, err = run_cli("-q", "gt", pipeline.data.h5, "--model", pipeline.pca24, "-o", tmp_path / "g.h5")
    assert "not a softmax model" in assert_one_line_error(rc, err)


def test_inspect_reports_the_seeds_measures_of_the_class_search(tmp_path):
    from vecspread.diagnostics.classes import mean_correct_angle
    from vecspread.io.datasets import Dataset

    model, codes, res = tmp_path / "m.h5", tmp_path / "c.h5", tmp_path / "r.h5"
    cli_ok("-q", "train", SAMPLE, "--method", "softmax", "--epochs", 3, "--batch-size", 64, "--dout", 32,
           "--bn-before-softmax", "-o", model)
    cli_ok("-q", "encode", model, SAMPLE, "--codec", "lattice", "--bits", 64, "-o", codes)
    cli_ok("-q", "search", codes, SAMPLE, "-k", 1, "-o", res)
    report = json.loads(cli_ok("inspect", codes, SAMPLE, "--json"))["class_search"]
    import vecspread

    t = vecspread.load_transform(str(model))
    with Dataset(SAMPLE) as ds:
        xq, y = ds.read("test"), ds.labels("test")
    reps, w = t.apply(xq), t.class_vectors()
    exact = np.argmax(reps @ w.T, axis=1)
    with h5py.File(res) as f:
        first = f["neighbors"][:, 0]
    right = exact == y
    assert report["classes"] == 100 and report["accuracy"] == pytest.approx(right.mean())
    assert report["mean_correct_angle"] == pytest.approx(mean_correct_angle(reps, w, y), rel=1e-5)
    assert report["index_top1"] == pytest.approx((first == exact).mean())
    assert report["relative_accuracy"] == pytest.approx((first[right] == exact[right]).mean())
    assert report["table_balance"]["hyperplane_7"]["ratio"] >= 1 and report["table_balance"]["cross_polytope_1"]["M_star"] > 0
    rc, _, err = run_cli("-q", "inspect", model, SAMPLE, "--figures", tmp_path / "fig")
    assert "drop --figures" in assert_one_line_error(rc, err)


def test_a_checkpoint_is_not_resumed_with_other_labels(tmp_path):
    from vecspread.runtime import RunSettings
    from vecspread.transforms.softmax.transform import SoftmaxTransform

    x, y = _clusters(n=600)
    params = dict(epochs=2, batch_size=64, dint=32, dout=8, seed=0)
    ck = str(tmp_path / "ck.h5")
    SoftmaxTransform(**params).fit(x, labels=y, run=RunSettings(checkpoint=ck, max_minutes=1e-9))
    with pytest.raises(ConfigError, match="labels"):
        SoftmaxTransform(**params).fit(x, labels=(y + 1) % 8, run=RunSettings(resume=ck))
    SoftmaxTransform(**params).fit(x, labels=y, run=RunSettings(resume=ck))  # the same labels resume


def test_pq_on_too_few_class_vectors_names_the_remedy(tmp_path):
    model = tmp_path / "m.h5"
    cli_ok("-q", "train", SAMPLE, "--method", "softmax", "--epochs", 1, "--batch-size", 64, "--dout", 16, "-o", model)
    rc, _, err = run_cli("-q", "encode", model, SAMPLE, "--codec", "pq", "--bits", 16, "-o", tmp_path / "c.h5")
    line = assert_one_line_error(rc, err)
    assert "100 class vectors are fewer than the 256" in line and "--codec lattice" in line
