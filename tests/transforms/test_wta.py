"""Tests of the WTA autoencoder: lifetime sparsity in its training steps, released at inference, the centred
code, stacked training leaving the frozen layers unchanged, it learns (reconstruction against PCA of the
same width, numpy), resume bit for bit, refusals, and the CLI chain wta -> pca -> lattice."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from conftest import ProgressRecorder, cli_ok, weights_equal  # noqa: E402
from vecspread.errors import ConfigError  # noqa: E402
from vecspread.neural.sparsity import kept_per_unit  # noqa: E402
from vecspread.runtime import RunSettings  # noqa: E402
from vecspread.transforms.wta.transform import WTAObjective, WTATransform  # noqa: E402
from torch_fixtures import one_thread  # noqa: F401,E402  (autouse: every test runs on one thread)

TINY = dict(dout=24, batch_size=64, epochs=3, seed=2, val_size=(200, 30))


@pytest.fixture(scope="module")
def clustered(nonnegative_clusters) -> np.ndarray:
    return nonnegative_clusters


def test_code_is_sparse_in_training_dense_and_centred_at_inference(clustered):
    t = WTATransform(**{**TINY, "val_size": 0, "sparsity": 10}).fit(clustered)
    net = t.net_
    xs = torch.from_numpy(clustered[:64] * np.float32(t.input_scale_))
    net.train()
    h = net.code(xs)
    # at most the kept share per unit (fewer where a kept activation is a ReLU zero)
    assert ((h > 0).sum(0) <= kept_per_unit(10, 64)).all()
    net.eval()
    dense = net.dense(xs)
    assert (dense > 0).float().mean() > 0.2  # released: many more units fire
    y = t.apply(clustered)
    np.testing.assert_allclose(y.mean(0), 0, atol=1e-4)  # centred on the training codes (all of them train)
    assert all(0 < r["active"] <= 0.1 + 1e-6 for r in t.history_)


def test_it_learns_reconstruction_against_pca_and_the_mean(clustered):
    x = clustered
    t = WTATransform(dout=64, batch_size=64, epochs=30, seed=0, val_size=0, sparsity=20).fit(x)
    assert t.history_[-1]["loss"] < 0.5 * t.history_[0]["loss"]
    # the decoders were trained on sparse codes: reconstruct through the code made sparse as in training
    err = float(((t.reconstruct(x, sparse_batch=64) - x) ** 2).mean())
    xc = x - x.mean(0)
    mean_only = float((xc ** 2).mean())
    _, _, vt = np.linalg.svd(xc.astype(np.float64), full_matrices=False)
    pca4 = float(((xc - xc @ vt[:4].T @ vt[:4]) ** 2).mean())  # numpy PCA with 4 components
    assert err < 0.25 * mean_only and err < pca4
    # the released (dense) code is what codecs see; its reconstruction is larger and only has to be finite
    assert np.isfinite(t.reconstruct(x)).all()


def test_stacked_training_leaves_the_frozen_layers_unchanged(clustered, monkeypatch):
    snapshots: list[dict[str, np.ndarray]] = []
    finish = WTAObjective.finish_epoch

    def record(self, net):
        finish(self, net)
        snapshots.append({k: v.detach().clone().numpy() for k, v in net.state_dict().items()})

    monkeypatch.setattr(WTAObjective, "finish_epoch", record)
    rec = ProgressRecorder()
    t = WTATransform(dout=8, hidden=(16,), stacked=True, batch_size=64, epochs=4, seed=1, val_size=0)
    t.fit(clustered, progress=rec)
    assert len(snapshots) == 4
    first = [k for k in snapshots[0] if k.startswith(("blocks.0.", "decoders.0."))]
    second = [k for k in snapshots[0] if k.startswith(("blocks.1.", "decoders.1."))]
    assert first and second
    # epochs 1-2 train layer 1 (layer 2 untouched), epochs 3-4 layer 2 (layer 1 untouched)
    assert all(np.array_equal(snapshots[0][k], snapshots[1][k]) is False for k in first)
    assert all(np.array_equal(snapshots[0][k], snapshots[1][k]) for k in second)
    assert all(np.array_equal(snapshots[1][k], snapshots[3][k]) for k in first)
    assert all(not np.array_equal(snapshots[2][k], snapshots[3][k]) for k in second)
    assert [s for s in rec.lines if "trains layer" in s] == ["wta: epoch 1 trains layer 1 of 2",
                                                             "wta: epoch 3 trains layer 2 of 2"]


def test_seeded_and_resume_continues_bit_for_bit(clustered, tmp_path):
    params = {**TINY, "hidden": (32,)}
    full = WTATransform(**params).fit(clustered)
    assert weights_equal(full.get_weights(), WTATransform(**params).fit(clustered).get_weights())
    assert not weights_equal(full.get_weights(), WTATransform(**{**params, "seed": 3}).fit(clustered).get_weights())
    ck = str(tmp_path / "ck.h5")
    with pytest.raises(KeyboardInterrupt):
        WTATransform(**params).fit(clustered, progress=ProgressRecorder(stop_after_epoch=1),
                                   run=RunSettings(checkpoint=ck))
    resumed = WTATransform(**params).fit(clustered, run=RunSettings(resume=ck))
    assert weights_equal(full.get_weights(), resumed.get_weights())
    assert resumed.best_epoch_ == full.best_epoch_


def test_round_trip_and_validation_record(clustered):
    t = WTATransform(**TINY).fit(clustered)
    assert all(0 <= r["sign_r10"] <= 1 for r in t.history_)
    again = WTATransform.from_state(t.get_config(), t.get_weights())
    np.testing.assert_array_equal(again.apply(clustered), t.apply(clustered))
    np.testing.assert_array_equal(again.reconstruct(clustered), t.reconstruct(clustered))


@pytest.mark.parametrize("params,match", [
    ({"stacked": True}, "--hidden"),
    ({"stacked": True, "hidden": (8, 8), "epochs": 2}, "at least 3"),
    ({"hidden": "8,x"}, "--hidden"),
    ({"hidden": "0"}, "--hidden"),
    ({"sparsity": 0}, "--sparsity"),
    ({"sparsity": 101}, "--sparsity"),
    ({"dint": 8}, "does not apply"),
])
def test_refusals(params, match):
    with pytest.raises(ConfigError, match=match):
        WTATransform(**params)


def test_hidden_widths_from_text():
    assert WTATransform(hidden="1024,256").hidden == (1024, 256)
    assert WTATransform(hidden="none").hidden == ()


def test_cli_chain_wta_pca_lattice(syn, tmp_path):
    wta, chained = tmp_path / "wta.h5", tmp_path / "chain.h5"
    cli_ok("train", syn.h5, "--method", "wta", "--dout", "32", "--hidden", "64", "--epochs", "2", "-o", wta)
    sign_codes = tmp_path / "sign.h5"
    cli_ok("encode", wta, syn.h5, "-o", sign_codes)  # the method's codec: sign bits of the centred code
    cli_ok("train", syn.h5, "--method", "pca", "--dout", "8", "--after", wta, "-o", chained)
    lattice = tmp_path / "lattice.h5"
    cli_ok("encode", chained, syn.h5, "--codec", "lattice", "--bits", "32", "-o", lattice)
    out = cli_ok("search", lattice, syn.h5, "-k", "10", "-o", tmp_path / "res.h5", "--json")
    assert '"nq": 40' in out.replace(" ", "") or "40" in out
