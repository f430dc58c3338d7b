"""What every registered transform, codec and scanner must do (as scikit-learn's ``check_estimator``).

Each registered class is listed below with small options; a class added to a registry without an entry
here fails ``test_every_registered_class_is_checked``. The checks: ``fit`` returns self; outputs have the
documented shapes and dtypes; the state round-trips through JSON + arrays to identical outputs; a fixed
seed gives identical results; hyper-parameters are the declared ones (``get_params`` / ``set_params``),
none of them a run-time setting; unknown and out-of-range options are refused; codes are searched by the
codec's scanner exactly as a brute-force reference ranks them, with one rule for fewer than k codes.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import fit_method
from vecspread.codecs import REGISTRY as CODECS
from vecspread.errors import ConfigError
from vecspread.runtime import RUN_PARAMS
from vecspread.scanners import REGISTRY as SCANNERS
from vecspread.scanners import choose
from vecspread.transforms import REGISTRY as METHODS
from vecspread.transforms import method_params

D = 16
NEURAL = {"dint": 16, "epochs": 1}
#: train --method options that make each method quick on (400, 16) vectors
METHOD_OPTIONS = {
    "identity": {}, "pca": {"dout": 8}, "rotation": {"dout": 8, "seed": 1},
    "catalyzer": {"dout": 8, "bits": 16, "val_size": (0, 10), "kneg": 5, **NEURAL},
    "nphash": {"bits": 16, "k": 5, "proxies": 60, "batch_size": 64, "val_size": (60, 10), **NEURAL},
    "wta": {"dout": 16, "hidden": (16,), "batch_size": 64, "val_size": (60, 10), "epochs": 1},
    "softmax": {"dout": 8, "batch_size": 64, "val_size": (0, 10), **NEURAL},
    "lsh": {"bits": 16}, "lsh-thresholds": {"bits": 16}, "itq": {"bits": 16},
    "pq": {"bits": 32}, "opq": {"bits": 32, "train_iters": 1}, "lsq": {"bits": 32, "train_iters": 1, "encode_ils_iters": 1},
    "sign-alsh": {"bits": 16}, "l2-alsh": {"bits": 16}, "simple-lsh": {"bits": 16},
}
#: encode --codec options and the dimension of the vectors they code
CODEC_OPTIONS = {
    "sign": ({}, 16), "lattice": ({"bits": 16}, 8), "pq": ({"bits": 32}, 16), "opq": ({"bits": 32, "train_iters": 1}, 16),
    "lsq": ({"bits": 32, "train_iters": 1, "encode_ils_iters": 1}, 16), "l2lsh": ({"bits": 16}, 16),
    "flat": ({}, 16),
}
#: search options of the scanners that are chosen by options
SCANNER_OPTIONS = {"tables": {"tables": 4, "bits_per_table": 6, "probes": 63},
                   "lsh": {"lsh": "crosspolytope", "lsh_tables": 4, "lsh_probes": 1000},
                   "annoy": {"annoy_trees": 4, "annoy_search_k": 100_000}}


@pytest.fixture(scope="module")
def x() -> np.ndarray:
    """(400, 16) float32: correlated Gaussian vectors with varied norms."""
    rng = np.random.default_rng(0)
    return (rng.standard_normal((400, D)) @ rng.standard_normal((D, D))).astype(np.float32)


def supervised(method: str) -> dict:
    """What ``fit`` takes besides the vectors: the labels of a supervised method (softmax), 5 classes."""
    cls = METHODS[spec_name(method)].load()
    return {"labels": np.arange(400) % 5} if getattr(cls, "needs_labels", False) else {}


def test_every_registered_class_is_checked():
    assert set(METHOD_OPTIONS) == set(METHODS.names)
    assert set(CODEC_OPTIONS) == set(CODECS.names)
    assert {s.name for s in SCANNERS if len(s.params)} == set(SCANNER_OPTIONS)
    assert {c for c in (CODECS.load(n).scanner for n in CODECS.names)} | set(SCANNER_OPTIONS) == set(SCANNERS.names)


# ============================================================================ transforms


@pytest.mark.parametrize("method", METHODS.names)
def test_transform_fits_maps_and_round_trips(method, x):
    transform, codec = fit_method(method, x, **METHOD_OPTIONS[method], **supervised(method))
    y, yq = transform.apply(x[:50]), transform.apply_query(x[:50])
    for out in (y, yq):
        assert out.shape == (50, transform.d_out) and out.dtype == np.float32 and np.isfinite(out).all()
    assert transform.d_in == D
    config = json.loads(json.dumps(transform.get_config()))  # what a model file stores
    assert not set(config) & set(RUN_PARAMS.names) - set(transform.params.names), config
    weights = transform.get_weights()
    assert all(isinstance(w, np.ndarray) and w.dtype.kind in "iuf" for w in weights.values())
    again = type(transform).from_state(config, {k: np.array(v) for k, v in weights.items()})
    np.testing.assert_array_equal(again.apply(x[:50]), y)
    np.testing.assert_array_equal(again.apply_query(x[:50]), yq)
    trained_with = METHODS[method].codec if METHODS[method].transform else transform.codec_name()
    assert (codec is None) == (trained_with is None)
    if codec is not None:
        assert codec.name == trained_with and codec.encode(y).shape == (50, codec.code_size)


@pytest.mark.parametrize("method", METHODS.names)
def test_transform_fit_returns_self_and_is_seeded(method, x):
    spec = METHODS[spec_name(method)]
    options = {k: v for k, v in METHOD_OPTIONS[method].items() if k in spec.params}
    a = spec.load()(**options)
    assert a.fit(x, **supervised(method)) is a
    b = spec.load()(**options).fit(x, **supervised(method))
    np.testing.assert_array_equal(a.apply(x[:20]), b.apply(x[:20]))


@pytest.mark.parametrize("method", METHODS.names)
def test_transform_params_are_the_declared_ones(method):
    spec = METHODS[spec_name(method)]
    cls = spec.load()
    t = cls(**{k: v for k, v in METHOD_OPTIONS[method].items() if k in spec.params})
    assert set(t.get_params()) == set(spec.params.names) == set(cls.params.names)
    assert not set(spec.params.names) & set(RUN_PARAMS.names)  # run settings are never hyper-parameters
    for p in spec.params:
        assert p.help and p.name.isidentifier(), p
    if spec.params.names:
        name = spec.params.names[0]
        assert cls(**t.get_params()).get_params() == t.get_params()
        p = spec.params[name]
        value = p.default if p.default is not None else {int: 8, float: 0.5, str: (p.choices or ("x",))[0],
                                                          bool: True}.get(p.kind)
        if value is not None and p.convert is None:
            assert t.set_params(**{name: value}) is t and getattr(t, name) == value


@pytest.mark.parametrize("method", METHODS.names)
def test_method_refuses_options_it_does_not_take(method, x):
    from vecspread.stages.train import make_method

    taken = set(method_params(METHODS[method]).names)
    stray = next(n for n in ("dint", "tables", "hash_bits", "dout", "lam") if n not in taken)
    with pytest.raises(ConfigError, match=f"--{stray.replace('_', '-')} does not apply to --method {method}"):
        make_method(method, {**METHOD_OPTIONS[method], stray: 1})


@pytest.mark.parametrize("method", [m for m in METHODS.names if method_params(METHODS[m]).names])
def test_method_refuses_bad_values(method):
    """An out-of-range value of a bounded option, and text where a number is declared."""
    from vecspread.stages.train import make_method

    params = list(method_params(METHODS[method]))
    bounded = [p for p in params if p.kind is int and p.ge is not None]
    if bounded:
        with pytest.raises(ConfigError, match=bounded[0].flag):
            make_method(method, {**METHOD_OPTIONS[method], bounded[0].name: int(bounded[0].ge) - 1})
    number = next(p for p in params if p.kind in (int, float))
    with pytest.raises(ConfigError, match=f"{number.flag} must be"):
        make_method(method, {**METHOD_OPTIONS[method], number.name: "many"})


def spec_name(method: str) -> str:
    """The registered transform of a method (a shorthand stands for another)."""
    return METHODS[method].transform or method


# ============================================================================ codecs


def codec_data(name: str, x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x[:, : CODEC_OPTIONS[name][1]])


@pytest.mark.parametrize("name", CODECS.names)
def test_codec_encodes_and_round_trips(name, x):
    options, d = CODEC_OPTIONS[name]
    y = codec_data(name, x)
    codec = CODECS.create(name, options)
    assert codec.fit(y) is codec
    codes = codec.encode(y)
    assert codes.dtype == np.uint8 and codes.shape == (len(y), codec.code_size)
    assert 0 < codec.code_bits <= 8 * codec.code_size
    config = json.loads(json.dumps(codec.get_config()))
    arrays = codec.get_arrays()
    assert all(a.dtype.kind in "iuf" for a in arrays.values())
    again = type(codec).from_state(config, {k: np.array(v) for k, v in arrays.items()})
    np.testing.assert_array_equal(again.encode(y), codes)
    assert codec.family and codec.scanner in SCANNERS
    assert set(codec.get_params()) == set(CODECS[name].params.names)
    with pytest.raises(ConfigError, match="does not apply to --codec"):
        CODECS.create(name, {**options, "tables": 3})


@pytest.mark.parametrize("name", CODECS.names)
def test_codec_scanner_ranks_as_brute_force(name, x):
    options, _ = CODEC_OPTIONS[name]
    y = codec_data(name, x)
    codec = CODECS.create(name, options).fit(y)
    codes = codec.encode(y[:150])
    yq = y[150:160]
    D_ref = reference_distances(codec, yq, codes)
    k = 20
    ids = np.broadcast_to(np.arange(len(codes)), D_ref.shape)
    I_ref = np.lexsort((ids, D_ref), axis=1)[:, :k]
    for split in ([codes], [codes[:1], codes[1:70], codes[70:]]):
        result = choose(codec, {}).search(yq, split, k)
        assert result.D.dtype == np.float32 and result.I.dtype == np.int64 and result.I.shape == (10, k)
        assert (np.diff(result.D, axis=1) >= 0).all()
        got = np.take_along_axis(D_ref, result.I, 1)
        np.testing.assert_allclose(got, np.take_along_axis(D_ref, I_ref, 1), rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(result.D, got, rtol=1e-4, atol=1e-4)
        exact = ~np.isclose(got[:, :-1], got[:, 1:], rtol=1e-6, atol=1e-6)  # where no tie straddles
        assert (result.I[:, :-1][exact] == I_ref[:, :-1][exact]).all() or name in ("pq", "opq")


def reference_distances(codec, yq: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """(nq, n) float64: each scanner's distance written directly (README: the codec's own distance)."""
    if codec.family == "binary":
        q = codec.encode(yq)
        return np.unpackbits(q[:, None, :] ^ codes[None], axis=2).sum(-1).astype(np.float64)
    if codec.family == "e2lsh":
        hq, hb = codec.unpack(codec.encode(yq)), codec.unpack(codes)
        return (codec.nhash_ - (hq[:, None, :] == hb[None]).sum(-1)).astype(np.float64)
    recon = codec.decode(codes).astype(np.float64)
    q = yq.astype(np.float64)
    if codec.family == "lattice":
        q = q / np.linalg.norm(q, axis=1, keepdims=True)
    return ((q[:, None, :] - recon[None]) ** 2).sum(-1)


# ============================================================================ scanners


def _scanners_with_codecs():
    out = []
    for name in SCANNERS.names:
        families = SCANNERS.load(name).families
        codec_name = next((c for c in CODECS.names if CODECS.load(c).scanner == name), None) or \
            next(c for c in CODECS.names if CODECS.load(c).family in families)
        out.append((name, codec_name))
    return out


@pytest.mark.parametrize("scanner,codec_name", _scanners_with_codecs())
def test_scanner_pads_when_there_are_fewer_codes_than_k(scanner, codec_name, x):
    options, _ = CODEC_OPTIONS[codec_name]
    y = codec_data(codec_name, x)
    codec = CODECS.create(codec_name, options).fit(y)
    codes = codec.encode(y[:7])
    s = SCANNERS.create(scanner, SCANNER_OPTIONS.get(scanner, {}), codec)
    result = s.search(y[300:303], [codes[:3], codes[3:]], 10)
    assert result.I.shape == result.D.shape == (3, 10)
    assert (result.I[:, 7:] == -1).all() and np.isinf(result.D[:, 7:]).all()
    assert all(sorted(row) == list(range(7)) for row in result.I[:, :7].tolist())


@pytest.mark.parametrize("scanner", SCANNERS.names)
def test_scanner_refuses_codes_of_another_family(scanner, x):
    spec_families = SCANNERS.load(scanner).families
    other = next(c for c in CODECS.names if CODECS.load(c).family not in spec_families)
    options, _ = CODEC_OPTIONS[other]
    codec = CODECS.create(other, options).fit(codec_data(other, x))
    with pytest.raises(ConfigError, match="scanner reads"):
        SCANNERS.create(scanner, SCANNER_OPTIONS.get(scanner, {}), codec)
