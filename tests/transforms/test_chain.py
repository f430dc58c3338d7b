"""Chained models (``vecspread train --after``) and the MIPS lifts' ``lift_only`` mode.

The chain is checked against composing the stages by hand with numpy; the CLI test runs the real
commands (a Simple-LSH lift, then a small catalyzer on the lifted learn set) and recomputes the
search from the stages' own outputs.
"""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from conftest import assert_one_line_error, cli_ok, mips_data, run_cli
from vecspread.io.artifacts import write_artifact
from vecspread.errors import ConfigError
from vecspread.models import open_model
from vecspread.transforms import METHOD_NAMES, STORED_TYPES, transform_class
from vecspread.transforms.chain import ChainTransform
from vecspread.transforms.linear.transforms import PCATransform
from vecspread.transforms.mips.transforms import SignALSHTransform, SimpleLSHTransform


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    return mips_data(2000, 16, 0), np.random.default_rng(1).standard_normal((50, 16)).astype(np.float32)


def test_every_registered_class_is_named_by_its_key():
    for name in STORED_TYPES:
        assert transform_class(name).name == name
    assert "chain" not in METHOD_NAMES  # stored, never trained directly


@pytest.mark.parametrize("cls", [SignALSHTransform, SimpleLSHTransform])
def test_lift_only_outputs_the_lifts(cls, data):
    xb, xq = data
    t = cls(lift_only=True).fit(xb)
    assert t.d_out == t.d_lift == 16 + t.n_extra and t.projection_ is None and t.codec_name() is None
    np.testing.assert_array_equal(t.apply(xb[:20]), t.lift(xb[:20]))
    np.testing.assert_array_equal(t.apply_query(xq), t.lift_query(xq))
    with pytest.raises(ConfigError, match="lift-only"):
        cls(lift_only=True, bits=32).fit(xb)


def test_chain_composes_both_sides_and_round_trips(data):
    xb, xq = data
    lift = SignALSHTransform(lift_only=True).fit(xb)
    pca = PCATransform(dout=8).fit(lift.apply(xb))
    chain = ChainTransform([lift, pca])
    assert (chain.d_in, chain.d_out, chain.method_names) == (16, 8, ["sign-alsh", "pca"])
    # reference: the stages by hand, PCA as numpy centring + its stored projection matrix
    w = pca.get_weights()
    P = lift.lift(xb[:100]).astype(np.float64)
    Q = lift.lift_query(xq).astype(np.float64)
    mean, matrix = (w[k].astype(np.float64) for k in ("mean", "matrix"))
    np.testing.assert_allclose(chain.apply(xb[:100]), (P - mean) @ matrix.T, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(chain.apply_query(xq), (Q - mean) @ matrix.T, rtol=1e-4, atol=1e-4)
    # the queries' side differs from the database side (Sign-ALSH is asymmetric)
    assert not np.allclose(chain.apply(xq), chain.apply_query(xq))
    again = ChainTransform.from_state(json.loads(json.dumps(chain.get_config())), chain.get_weights())
    np.testing.assert_array_equal(again.apply(xb[:100]), chain.apply(xb[:100]))
    np.testing.assert_array_equal(again.apply_query(xq), chain.apply_query(xq))
    # chaining after a chain appends, never nests
    pca2 = PCATransform(dout=4).fit(chain.apply(xb))
    assert ChainTransform([chain, pca2]).method_names == ["sign-alsh", "pca", "pca"]


def test_chain_refuses_mismatched_stages(data):
    xb, _ = data
    lift = SimpleLSHTransform(lift_only=True).fit(xb)
    with pytest.raises(ValueError, match="takes 16-d input"):
        ChainTransform([lift, PCATransform(dout=4).fit(xb)])


@pytest.fixture(scope="module")
def ip_dataset(tmp_path_factory, data) -> str:
    xb, xq = data
    path = tmp_path_factory.mktemp("chain") / "ip.h5"
    with write_artifact(path, "dataset", attrs={"distance": "dot"}) as f:
        f.create_dataset("train", data=xb[:1000])
        f.create_dataset("learn", data=xb[1000:])
        f.create_dataset("test", data=xq[:20])
    return str(path)


def test_cli_catalyzer_after_a_lift_searches_through_both_stages(tmp_path, ip_dataset):
    lift, cat = str(tmp_path / "lift.h5"), str(tmp_path / "cat.h5")
    codes, res = str(tmp_path / "c.h5"), str(tmp_path / "r.h5")
    cli_ok("train", ip_dataset, "--method", "simple-lsh", "--lift-only", "-o", lift)
    out = cli_ok("train", ip_dataset, "--method", "catalyzer", "--after", lift, "--dout", "8", "--dint", "32",
                 "--epochs", "1", "--val-size", "0", "--kneg", "5", "--threads", "1", "--json", "-o", cat)
    summary = json.loads(out)
    assert summary["chain"] == ["simple-lsh", "catalyzer"] and summary["d_in"] == 16 and summary["d_out"] == 8
    cli_ok("encode", cat, ip_dataset, "--codec", "sign", "-o", codes)
    cli_ok("search", codes, ip_dataset, "-k", "10", "-o", res)
    with h5py.File(ip_dataset, "r") as f:
        xb, xq = f["train"][:], f["test"][:]
    _, chain = open_model(cat)
    lift_t, cat_t = chain.stages
    # reference: the sign bits of catalyzer(P(x)) and catalyzer(Q(q)), ranked by Hamming distance then id
    cb = cat_t.apply(lift_t.apply(xb)) > 0
    cq = cat_t.apply(lift_t.apply_query(xq)) > 0
    ham = (cq[:, None, :] != cb[None, :, :]).sum(-1)
    with h5py.File(res, "r") as f:
        I = f["neighbors"][:]
    for q in range(len(xq)):
        np.testing.assert_array_equal(I[q], sorted(range(len(xb)), key=lambda i: (ham[q, i], i))[:10])
    with h5py.File(cat, "r") as f:
        recorded = [rec["role"] for rec in json.loads(f.attrs["inputs"])]
    assert recorded == ["dataset", "after"]
    with h5py.File(codes, "r") as f:
        assert json.loads(f.attrs["params"])["chain"] == ["simple-lsh", "catalyzer"]
    report = json.loads(cli_ok("inspect", codes, ip_dataset, "--json", "--threads", "1"))
    assert report["method"] == "simple-lsh -> catalyzer"


def test_cli_after_errors(tmp_path, ip_dataset, syn):
    lift = str(tmp_path / "lift.h5")
    cli_ok("train", ip_dataset, "--method", "simple-lsh", "--lift-only", "-o", lift)
    cases = [
        (("train", syn.h5, "--method", "pca", "--after", lift), "expects 16-dimensional vectors"),
        (("train", ip_dataset, "--method", "pca", "--after", str(tmp_path / "nope.h5")), "no such file"),
        (("train", ip_dataset, "--method", "pca", "--after", "-"), "needs a model file"),
        (("train", ip_dataset, "--method", "simple-lsh", "--lift-only", "--bits", "32"), "lift-only"),
    ]
    for args, message in cases:
        line = assert_one_line_error(*run_cli(*args, "-o", str(tmp_path / "x.h5"))[::2])
        assert message in line
    assert not (tmp_path / "x.h5").exists()
    line = assert_one_line_error(*run_cli("train", ip_dataset, "--method", "pca", "--after", lift, "-o", lift)[::2])
    assert "lift.h5" in line
