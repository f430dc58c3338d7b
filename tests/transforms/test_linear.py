"""Identity, PCA and random rotation against numpy references."""

from __future__ import annotations

import numpy as np
import pytest

from vecspread.errors import ConfigError
from vecspread.transforms import METHOD_NAMES, REGISTRY
from vecspread.transforms.linear.transforms import IdentityTransform, PCATransform, RotationTransform


@pytest.fixture(scope="module")
def xt() -> np.ndarray:
    """Anisotropic data with well separated variances (so principal directions are unique)."""
    rng = np.random.default_rng(0)
    scales = np.linspace(10, 0.5, 20)
    basis, _ = np.linalg.qr(rng.standard_normal((20, 20)))
    return ((rng.standard_normal((2000, 20)) * scales) @ basis.T + 3.0).astype(np.float32)


def test_pca_equals_svd_projection_up_to_sign(xt):
    dout = 8
    t = PCATransform(dout=dout).fit(xt)
    x64 = xt.astype(np.float64)
    mean = x64.mean(0)
    _, s, vt = np.linalg.svd(x64 - mean, full_matrices=False)
    ref = (x64 - mean) @ vt[:dout].T
    y = t.apply(xt)
    assert y.shape == (2000, dout) and y.dtype == np.float32
    for j in range(dout):
        sign = np.sign(np.dot(y[:, j], ref[:, j]))
        np.testing.assert_allclose(sign * y[:, j], ref[:, j], rtol=1e-3, atol=1e-3)
    # explained variance: the SVD's, in decreasing order
    var = s[:dout] ** 2 / (len(xt) - 1)
    np.testing.assert_allclose(t.explained_variance_, var, rtol=1e-4)
    assert (np.diff(t.explained_variance_) <= 0).all()
    # projected coordinates are centred and uncorrelated
    np.testing.assert_allclose(y.mean(0), 0, atol=1e-3)
    cov = np.cov(y.astype(np.float64), rowvar=False)
    np.testing.assert_allclose(cov - np.diag(np.diag(cov)), 0, atol=1e-2)


def test_pca_components_orthonormal_and_default_dout(xt):
    t = PCATransform().fit(xt)
    assert t.d_in == 20 and t.d_out == 20
    np.testing.assert_allclose(t.matrix_ @ t.matrix_.T, np.eye(20), atol=1e-5)
    # a full PCA is an isometry of the centred data
    y = t.apply(xt[:50])
    d_x = np.linalg.norm(xt[:50, None] - xt[None, :50], axis=-1)
    d_y = np.linalg.norm(y[:, None] - y[None], axis=-1)
    np.testing.assert_allclose(d_y, d_x, rtol=1e-4, atol=1e-3)


def test_pca_rotate_is_the_projection_rotated_with_the_variance_spread(xt):
    """--rotate: y = R (P (x - mean)) with R (dout, dout) orthogonal; the distances of the PCA projection are
    kept, and the leading components' variance is shared between the halves of the output (two blocks)."""
    dout = 8
    plain, rotated = PCATransform(dout=dout).fit(xt), PCATransform(dout=dout, rotate=True).fit(xt)
    y, z = plain.apply(xt).astype(np.float64), rotated.apply(xt).astype(np.float64)
    r, *_ = np.linalg.lstsq(y, z, rcond=None)  # the (dout, dout) map from the plain to the rotated output
    np.testing.assert_allclose(r.T @ r, np.eye(dout), atol=1e-4)
    np.testing.assert_allclose(y @ r, z, atol=1e-3)
    d_y = np.linalg.norm(y[:50, None] - y[None, :50], axis=-1)
    d_z = np.linalg.norm(z[:50, None] - z[None, :50], axis=-1)
    np.testing.assert_allclose(d_z, d_y, rtol=1e-4, atol=1e-3)
    share = lambda v: v[: dout // 2].sum() / v.sum()  # noqa: E731 - the first block's share of the variance
    assert share(y.var(0)) > 0.6 and abs(share(z.var(0)) - 0.5) < abs(share(y.var(0)) - 0.5)
    np.testing.assert_array_equal(PCATransform(dout=dout, rotate=True).fit(xt).matrix_, rotated.matrix_)


def test_pca_rejects_bad_dout(xt):
    with pytest.raises(ConfigError):
        PCATransform(dout=21).fit(xt)
    with pytest.raises(ConfigError):
        PCATransform(dout=0).fit(xt)
    with pytest.raises(ConfigError):
        PCATransform(dout=2).fit(xt[:1])


@pytest.mark.parametrize("dout", [1, 7, 20])
def test_rotation_rows_orthonormal(xt, dout):
    t = RotationTransform(dout=dout, seed=3).fit(xt)
    assert t.matrix_.shape == (dout, 20)
    np.testing.assert_allclose(t.matrix_ @ t.matrix_.T, np.eye(dout), atol=1e-5)
    # no centring: y = R x
    np.testing.assert_allclose(t.apply(xt[:10]), xt[:10].astype(np.float64) @ t.matrix_.T.astype(np.float64),
                               rtol=1e-4, atol=1e-3)


def test_rotation_full_dimension_preserves_norms(xt):
    t = RotationTransform(seed=1).fit(xt)
    np.testing.assert_allclose(np.linalg.norm(t.apply(xt[:100]), axis=1), np.linalg.norm(xt[:100], axis=1), rtol=1e-5)


def test_rotation_seeded(xt):
    a = RotationTransform(dout=8, seed=5).fit(xt).matrix_
    b = RotationTransform(dout=8, seed=5).fit(xt[:10]).matrix_  # the data does not matter, only d
    c = RotationTransform(dout=8, seed=6).fit(xt).matrix_
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 0.1


def test_rotation_rejects_bad_dout(xt):
    with pytest.raises(ConfigError):
        RotationTransform(dout=0).fit(xt)


def test_identity(xt):
    t = IdentityTransform().fit(xt)
    assert t.d_in == t.d_out == 20
    np.testing.assert_array_equal(t.apply(xt), xt)
    np.testing.assert_array_equal(t.apply(xt.astype(np.float64)), xt)
    assert t.apply(xt).dtype == np.float32


@pytest.mark.parametrize("method, params", [("identity", {}), ("pca", {"dout": 6}), ("rotation", {"dout": 9, "seed": 4})])
def test_from_state_round_trip(xt, method, params):
    cls = REGISTRY.load(method)
    t = cls(**params).fit(xt)
    config, weights = t.get_config(), t.get_weights()
    assert config["d_in"] == 20 and config["d_out"] == t.d_out
    for w in weights.values():
        assert isinstance(w, np.ndarray) and w.dtype.kind == "f"
    u = cls.from_state(config, {k: np.array(v) for k, v in weights.items()})
    assert (u.d_in, u.d_out) == (t.d_in, t.d_out)
    assert u.get_config() == config
    np.testing.assert_array_equal(u.apply(xt[:30]), t.apply(xt[:30]))
    np.testing.assert_array_equal(u.apply_query(xt[:30]), t.apply_query(xt[:30]))


def test_registry_lists_the_linear_methods():
    assert {"identity", "pca", "rotation"} <= set(METHOD_NAMES)
    assert REGISTRY.load("pca") is PCATransform


@pytest.mark.parametrize("method", ["pca", "rotation"])
def test_from_state_refuses_inconsistent_weights(xt, method):
    """A damaged model (mean and matrix of different widths) must be refused when loaded, as a
    ValueError (which model loading turns into a one-line InputError), not fail later in apply()."""
    cls = REGISTRY.load(method)
    t = cls(dout=6).fit(xt)
    weights = t.get_weights()
    bad = {"mean": np.zeros(5, np.float32), "matrix": weights["matrix"]}
    with pytest.raises(ValueError):
        cls.from_state(t.get_config(), bad)
