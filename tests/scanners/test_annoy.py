"""Annoy trees over flat codes (optional package): exact when every node is visited, and a clear refusal
without the package."""

import sys

import numpy as np
import pytest

from vecspread.codecs import REGISTRY as CODECS
from vecspread.errors import ConfigError
from vecspread.scanners import choose


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(4)
    return rng.standard_normal((500, 10)).astype(np.float32), rng.standard_normal((30, 10)).astype(np.float32)


@pytest.mark.parametrize("metric", ["dot", "euclidean"])
def test_visiting_every_node_is_the_exact_search(metric, data):
    pytest.importorskip("annoy")
    xb, xq = data
    codec = CODECS.create("flat", {"metric": metric}).fit(xb)
    scanner = choose(codec, {"annoy_trees": 5, "annoy_search_k": 1_000_000})
    assert scanner.name == "annoy"
    result = scanner.search(xq, [codec.encode(xb)], 8)
    q, b = xq.astype(np.float64), xb.astype(np.float64)
    ref = -(q @ b.T) if metric == "dot" else ((q[:, None] - b[None]) ** 2).sum(-1)
    I_ref = np.lexsort((np.broadcast_to(np.arange(len(xb)), ref.shape), ref), axis=1)[:, :8]
    np.testing.assert_array_equal(result.I, I_ref)
    np.testing.assert_allclose(result.D, np.take_along_axis(ref, I_ref, 1), rtol=1e-5, atol=1e-5)


def test_fewer_nodes_find_fewer_and_the_seed_fixes_the_trees(data):
    pytest.importorskip("annoy")
    xb, xq = data
    codec = CODECS.create("flat", {"metric": "dot"}).fit(xb)
    codes = codec.encode(xb)
    few = choose(codec, {"annoy_trees": 2, "annoy_search_k": 20}).search(xq, [codes], 1)
    again = choose(codec, {"annoy_trees": 2, "annoy_search_k": 20}).search(xq, [codes], 1)
    np.testing.assert_array_equal(few.I, again.I)
    exact = choose(codec, {}).search(xq, [codes], 1)
    assert (few.I[:, 0] == exact.I[:, 0]).mean() < 1


def test_without_the_package_the_error_says_how_to_install(data, monkeypatch):
    xb, xq = data
    codec = CODECS.create("flat", {}).fit(xb)
    monkeypatch.setitem(sys.modules, "annoy", None)
    with pytest.raises(ConfigError, match="pip install annoy"):
        choose(codec, {"annoy_trees": 2}).search(xq, [codec.encode(xb)], 1)
