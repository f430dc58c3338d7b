"""The catalyzer trained for product lattice codes (past 64 bits): per-block normalisation, per-block KoLeo,
validation and the whole train -> encode -> search -> eval path through the CLI."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from conftest import cli_ok  # noqa: E402
from torch_fixtures import one_thread  # noqa: E402,F401  (autouse: every test runs on one thread)
from vecspread.neural.mlp import BlockNormalize, L2Normalize  # noqa: E402
from vecspread.transforms.catalyzer.transform import CatalyzerTransform, koleo_loss  # noqa: E402

TINY = dict(dout=12, dint=32, epochs=1, seed=3)


@pytest.fixture(scope="module")
def clustered() -> np.ndarray:
    """(1500, 16) float32: 15 Gaussian clusters."""
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(15, 16)) * 50
    return (centres[rng.integers(15, size=1500)] + 15 * rng.normal(size=(1500, 16))).astype(np.float32)


def test_block_normalize_gives_equal_block_norms_and_a_unit_row():
    y = torch.randn(50, 10, dtype=torch.float64) * torch.linspace(0.1, 10, 10, dtype=torch.float64)
    out = BlockNormalize((4, 3, 3))(y)
    for lo, hi in ((0, 4), (4, 7), (7, 10)):
        np.testing.assert_allclose(out[:, lo:hi].norm(dim=1).numpy(), 1 / np.sqrt(3))
        ref = y[:, lo:hi] / y[:, lo:hi].norm(dim=1, keepdim=True) / np.sqrt(3)  # direction of each block kept
        np.testing.assert_allclose(out[:, lo:hi].numpy(), ref.numpy())
    np.testing.assert_allclose(out.norm(dim=1).numpy(), 1)


def test_the_output_is_normalised_per_block_of_the_product_lattice(clustered):
    t = CatalyzerTransform(**TINY, bits=96, blocks=3).fit(clustered)  # 3 blocks of 4 dimensions, 32 bits each
    assert t.output_blocks() == (4, 4, 4) and isinstance(t.net_.net[-1], BlockNormalize)
    y = t.apply(clustered[:100])
    for lo in (0, 4, 8):
        np.testing.assert_allclose(np.linalg.norm(y[:, lo : lo + 4], axis=1), 1 / np.sqrt(3), rtol=1e-5)
    assert "lattice_r10" in t.history_[-1]  # validated at the product's budget

    whole = CatalyzerTransform(**TINY, bits=96, blocks=3, block_norm=False).fit(clustered)
    assert isinstance(whole.net_.net[-1], L2Normalize)
    yw = whole.apply(clustered[:100])
    np.testing.assert_allclose(np.linalg.norm(yw, axis=1), 1, rtol=1e-5)
    assert np.linalg.norm(yw[:, :4], axis=1).std() > 1e-3  # block norms free to vary

    one = CatalyzerTransform(**TINY, bits=32).fit(clustered)  # one lattice: one sphere, as before
    assert one.output_blocks() is None and isinstance(one.net_.net[-1], L2Normalize)
    sign = CatalyzerTransform(**TINY, bits=96, blocks=3, val_codec="sign")
    assert sign.output_blocks() is None  # not made for the lattice: no blocks


def test_per_block_koleo_is_the_mean_of_the_blocks_koleo(clustered):
    t = CatalyzerTransform(**TINY, bits=96, blocks=3, koleo="per-block")
    objective = t.objective(1000, 0, None)
    y = torch.nn.functional.normalize(torch.randn(64, 12), dim=1)
    expected = np.mean([koleo_loss(y[:, lo : lo + 4]).item() for lo in (0, 4, 8)])
    assert objective.koleo(y).item() == pytest.approx(expected, rel=1e-6)
    assert CatalyzerTransform(**TINY, bits=96, blocks=3).objective(1000, 0, None).koleo is koleo_loss
    t.fit(clustered)
    assert np.isfinite(t.history_[-1]["koleo"])


def test_train_encode_search_eval_at_128_bits(pipeline, tmp_path):
    syn = pipeline.data
    model, codes, res = tmp_path / "m.h5", tmp_path / "c.h5", tmp_path / "r.h5"
    cli_ok("-q", "train", syn.h5, "--dout", 48, "--dint", 32, "--epochs", 1, "--bits", 128, "-o", model)
    enc = json.loads(cli_ok("-q", "encode", model, syn.h5, "-o", codes, "--json"))
    assert enc["bits"] == 128 and enc["code_size"] == 16
    with h5py.File(codes, "r") as f:
        assert f["codes"].shape[1] == 16
    cli_ok("-q", "search", codes, syn.h5, "-k", 100, "-o", res)
    ev = json.loads(cli_ok("-q", "eval", res, pipeline.gt, "--json"))
    assert 0 < ev["recall"]["10"] <= 1
    report = json.loads(cli_ok("-q", "inspect", codes, syn.h5, "--nq", 20, "--json"))
    assert "atom" in json.dumps(report)


def test_end_to_end_training_through_the_product_codec(clustered):
    from vecspread.codecs.lattice.codec import LatticeCodec

    t = CatalyzerTransform(**TINY, bits=96, blocks=3, quantizer_train="lattice")
    objective = t.objective(1000, 0, None)  # quantizes with the product codec
    codec = LatticeCodec(bits=96, blocks=3).fit(np.zeros((1, 12), np.float32))
    out = np.random.default_rng(0).standard_normal((20, 12)).astype(np.float32)
    np.testing.assert_array_equal(objective.quantize(out), codec.quantize(out))
    t = CatalyzerTransform(**TINY, bits=96, blocks=3, quantizer_train="lattice").fit(clustered)
    assert np.isfinite(t.history_[-1]["triplet"]) and t.apply(clustered[:5]).shape == (5, 12)


def test_the_pca_path_starts_at_the_rotated_pca_projection(clustered):
    from vecspread.neural.mlp import build_mlp, init_mlp, init_pca_path

    net = build_mlp(16, 12, 32, 2, blocks=(6, 6), linear_path=True)
    init_mlp(net, torch.Generator().manual_seed(0))
    init_pca_path(net, clustered, seed=5)
    x = clustered.astype(np.float64)
    xc = x - x.mean(axis=0)
    vt = np.linalg.svd(xc, full_matrices=False)[2][:12]  # (12, 16) leading principal directions
    w = net.linear_path.weight.detach().numpy().astype(np.float64)
    # the rows are an orthogonal mix of exactly those directions, at one common scale
    gram = w @ w.T
    np.testing.assert_allclose(gram, gram[0, 0] * np.eye(12), atol=1e-6 * gram[0, 0])
    np.testing.assert_allclose(w @ vt.T @ vt, w, atol=1e-5 * np.sqrt(gram[0, 0]))
    z = xc @ w.T
    assert z.var(axis=0).mean() == pytest.approx(1, rel=1e-3)  # unit mean variance per output
    blocks = [z[:, :6], z[:, 6:]]
    ref = np.hstack([b / np.linalg.norm(b, axis=1, keepdims=True) for b in blocks]) / np.sqrt(2)
    y = net.eval()(torch.from_numpy(clustered)).detach().numpy()
    np.testing.assert_allclose(y, ref, atol=1e-5)  # before any step: the normalised PCA map
    assert sorted(k for k in net.state_dict() if k.startswith("linear_path")) == ["linear_path.bias",
                                                                                  "linear_path.weight"]


def test_training_with_the_pca_path_saves_resumes_and_refuses_more_outputs_than_inputs(clustered, tmp_path):
    from vecspread.errors import ConfigError
    from vecspread.neural.checkpoint import read_checkpoint
    from vecspread.runtime import RunSettings

    params = dict(TINY, bits=96, blocks=3, pca_path=True, epochs=2, val_size=0, kneg=5)
    full = CatalyzerTransform(**params).fit(clustered)
    assert full.net_.linear_path is not None and np.isfinite(full.history_[-1]["triplet"])
    u = CatalyzerTransform.from_state(full.get_config(), full.get_weights())
    np.testing.assert_array_equal(u.apply(clustered), full.apply(clustered))
    plain = CatalyzerTransform(**{**params, "pca_path": False}).fit(clustered)
    assert not np.allclose(plain.apply(clustered[:50]), full.apply(clustered[:50]))

    ck = str(tmp_path / "ck.h5")  # stopped after one step, resumed: the linear path is restored, not redrawn
    CatalyzerTransform(**params).fit(clustered, run=RunSettings(checkpoint=ck, max_minutes=1e-9))
    assert read_checkpoint(ck, "catalyzer")[0]["step"] == 1
    resumed = CatalyzerTransform(**params).fit(clustered, run=RunSettings(resume=ck))
    for name, w in full.get_weights().items():
        np.testing.assert_array_equal(resumed.get_weights()[name], w)

    with pytest.raises(ConfigError, match="--dout 24 is more than the input's 16 dimensions"):
        CatalyzerTransform(**{**params, "dout": 24, "bits": 64, "blocks": None}).fit(clustered)
