"""Tests for the faiss baselines (vecspread.transforms.baselines) and PQ-family codecs (vecspread.codecs.pq).

The reference for every method is faiss's own index, built from its class or factory string and trained
on the same real vectors (a slice of debsift200k): codes must be identical and recall equal within 0.01.
"""

from __future__ import annotations

import json
import re

import faiss
import h5py
import numpy as np
import pytest

from conftest import SHARED_DATA as DATA
from conftest import fit_method
from vecspread.codecs import REGISTRY as CODEC_REGISTRY
from vecspread.codecs.pq.codecs import LSQCodec, OPQCodec, PQCodec
from vecspread.errors import ConfigError
from vecspread.knn import knn_blocks
from vecspread.metrics import k_recall_at, one_recall_at
from vecspread.scanners import search
from vecspread.transforms import REGISTRY as METHOD_REGISTRY
from vecspread.transforms.baselines.transforms import ITQTransform, LSHThresholdsTransform, LSHTransform

DEBSIFT = DATA / "debsift200k.h5"
N_LEARN, N_BASE, N_QUERY = 10_000, 20_000, 200
KS = (1, 10, 100)

METHODS = {"lsh": LSHTransform, "lsh-thresholds": LSHThresholdsTransform, "itq": ITQTransform}
CODECS = {"pq": PQCodec, "opq": OPQCodec, "lsq": LSQCodec}


@pytest.fixture(autouse=True)
def one_thread():
    # faiss's OPQ/ITQ training is bit-reproducible only single-threaded (and the machine is shared)
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(before)


@pytest.fixture(scope="module")
def sift():
    """Real SIFT vectors: xt (10k learn), xb (20k base), xq (200 queries) float32, exact L2 top-100 gt."""
    if not DEBSIFT.exists():
        pytest.skip("needs ../shared/data")
    with h5py.File(DEBSIFT, "r") as f:
        xt = f["learn"][:N_LEARN].astype(np.float32)
        xb = f["train"][:N_BASE].astype(np.float32)
        xq = f["test"][:N_QUERY].astype(np.float32)
    gt_D, gt_I = knn_blocks(xq, [(0, xb)], 100)
    return {"xt": xt, "xb": xb, "xq": xq, "gt_I": gt_I, "gt_D": gt_D}


def test_registries_resolve_the_baselines():
    for name, cls in METHODS.items():
        assert METHOD_REGISTRY.load(name) is cls and METHOD_REGISTRY[name].codec == "sign"
    for name, cls in CODECS.items():
        assert CODEC_REGISTRY.load(name) is cls
        # --method pq/opq/lsq: a documented shorthand for the identity transform trained with the codec
        assert (METHOD_REGISTRY[name].transform, METHOD_REGISTRY[name].codec) == ("identity", name)


def recalls(I: np.ndarray, data: dict) -> dict[str, float]:
    out = {}
    for k in KS:
        out[f"1-R@{k}"] = one_recall_at(I, data["gt_I"], data["gt_D"], k)
        out[f"{k}-R@{k}"] = k_recall_at(I, data["gt_I"], data["gt_D"], k)
    return out


# --- equality with faiss on real data ---------------------------------------------------------------


def _lsq_ref(d: int):
    index = faiss.index_factory(d, "LSQ8x8")
    lsq = faiss.downcast_index(index).lsq
    lsq.train_iters, lsq.encode_ils_iters = 2, 2
    return index


def _opq_ref(d: int):
    # "PQ8np": the factory's plain "PQ8" also trains polysemous codes, which permutes the centroid ids
    # (same distances, different bytes) and takes 25x longer; the classes use IndexPQ(d, M, 8) semantics
    index = faiss.index_factory(d, "OPQ8,PQ8np")
    faiss.downcast_VectorTransform(index.chain.at(0)).niter = 3
    return index


def _opq_120_ref(d: int):
    # 96 bits on 128 dimensions: 12 sub-quantizers need a rotation to a multiple of 12 dimensions
    index = faiss.index_factory(d, "OPQ12_120,PQ12np")
    faiss.downcast_VectorTransform(index.chain.at(0)).niter = 3
    return index


# name -> (train --method and options, or a codec on the raw vectors; faiss reference; training vectors)
CASES = {
    "lsh": (("lsh", {"bits": 64}), lambda d: faiss.IndexLSH(d, 64, True, False), N_LEARN),
    "lsh-256": (("lsh", {"bits": 256}), lambda d: faiss.IndexLSH(d, 256, True, False), N_LEARN),
    "lsh-thresholds": (("lsh-thresholds", {"bits": 64}), lambda d: faiss.IndexLSH(d, 64, True, True), N_LEARN),
    "itq": (("itq", {"bits": 64}), lambda d: faiss.index_factory(d, "ITQ64,LSH"), N_LEARN),
    "pq": (("pq", {"bits": 64}), lambda d: faiss.index_factory(d, "PQ8np"), N_LEARN),
    "opq": (("opq", {"bits": 64, "train_iters": 3}), _opq_ref, N_LEARN),
    "opq-codec": (lambda: OPQCodec(bits=64, train_iters=3), _opq_ref, N_LEARN),
    "opq-96-dout-120": (("opq", {"bits": 96, "train_iters": 3, "dout": 120}), _opq_120_ref, N_LEARN),
    "lsq": (("lsq", {"bits": 64, "train_iters": 2, "encode_ils_iters": 2}), _lsq_ref, 1000),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_faiss_index(sift, case):
    ours_spec, make_ref, n_train = CASES[case]
    xt, xb, xq = sift["xt"][:n_train], sift["xb"], sift["xq"]
    d = xt.shape[1]

    if callable(ours_spec):  # a codec on the raw vectors, as `encode --codec` after `train --method identity`
        codec = ours_spec().fit(xt)
        yb, yq = xb, xq
    else:
        transform, codec = fit_method(ours_spec[0], xt, **ours_spec[1])
        yb, yq = transform.apply(xb), transform.apply_query(xq)
    # one encode call, as faiss's add: LSQ codes depend on the batch (see LSQCodec)
    codes = codec.encode(yb)
    D, I = search(codec, yq, np.array_split(codes, 3), 100)

    ref = make_ref(d)
    ref.train(xt)
    ref.add(xb)
    D_ref, I_ref = ref.search(xq, 100)
    inner = faiss.downcast_index(ref.index if isinstance(ref, faiss.IndexPreTransform) else ref)
    ref_codes = faiss.vector_to_array(inner.codes).reshape(len(xb), -1)

    np.testing.assert_array_equal(codes, ref_codes)
    ours, theirs = recalls(I, sift), recalls(I_ref, sift)
    for key in ours:
        assert abs(ours[key] - theirs[key]) <= 0.01, (key, ours, theirs)
    np.testing.assert_allclose(D[:, :10], D_ref[:, :10], rtol=1e-5)
    assert ours["1-R@100"] > 0.5  # a sanity floor: the data and ground truth line up


def test_itq_beyond_input_dimension(sift):
    """bits > d (faiss refuses): a learned tight frame; the transform keeps all directions and beats chance."""
    xt, xb, xq = sift["xt"][:2000], sift["xb"], sift["xq"]
    t, codec = fit_method("itq", xt, bits=256)
    A = t.get_weights()["matrix"]
    assert A.shape == (256, 128)
    np.testing.assert_allclose(A.T @ A, np.eye(128), atol=1e-4)  # orthonormal columns: no direction lost
    _, I = search(codec, t.apply_query(xq), [codec.encode(t.apply(xb))], 100)
    assert recalls(I, sift)["1-R@100"] > 0.8


# --- ADC scan against brute force ------------------------------------------------------------------


@pytest.mark.parametrize("codec_cls", [PQCodec, OPQCodec, LSQCodec])
def test_search_is_exact_adc(codec_cls):
    """D = squared L2 from the unquantized query to each decoded code; I in (distance, id) order, any split."""
    rng = np.random.default_rng(0)
    yt = rng.standard_normal((1000, 16)).astype(np.float32)
    yb = rng.standard_normal((700, 16)).astype(np.float32)
    yq = rng.standard_normal((9, 16)).astype(np.float32)
    kwargs = {"train_iters": 2} if codec_cls is not PQCodec else {}
    codec = codec_cls(bits=32, **kwargs).fit(yt)
    codes = codec.encode(yb)
    recon = codec.decode(codes)
    assert recon.shape == yb.shape and recon.dtype == np.float32
    exact = ((yq[:, None, :].astype(np.float64) - recon[None].astype(np.float64)) ** 2).sum(-1)
    order = np.lexsort((np.broadcast_to(np.arange(len(yb)), exact.shape), exact), axis=1)[:, :20]
    for split in (1, 3, 7):
        D, I = search(codec, yq, np.array_split(codes, split), 20)
        assert D.dtype == np.float32 and I.dtype == np.int64 and D.shape == I.shape == (9, 20)
        np.testing.assert_allclose(D, np.take_along_axis(exact, order, 1), rtol=1e-4, atol=1e-4)
        assert (np.diff(D, axis=1) >= 0).all()
        assert (np.take_along_axis(exact, I, 1) - np.take_along_axis(exact, order, 1) <= 1e-4).all()


def test_scan_pads_when_fewer_codes_than_k():
    rng = np.random.default_rng(1)
    codec = PQCodec(bits=16).fit(rng.standard_normal((300, 8)).astype(np.float32))
    codes = codec.encode(rng.standard_normal((5, 8)).astype(np.float32))
    D, I = search(codec, rng.standard_normal((2, 8)).astype(np.float32), [codes[:2], codes[2:]], 8)
    assert (I[:, :5] >= 0).all() and (I[:, 5:] == -1).all() and np.isinf(D[:, 5:]).all()
    assert sorted(I[0, :5]) == [0, 1, 2, 3, 4]


# --- state round trips ------------------------------------------------------------------------------


def _small(n: int = 1500, d: int = 32, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    # correlated dimensions, so that PCA, ITQ and OPQ have something to learn
    return (rng.standard_normal((n, d)) @ rng.standard_normal((d, d))).astype(np.float32)


ROUND_TRIP_METHODS = {
    "lsh": ("lsh", {"bits": 48, "seed": 3}),
    "lsh-thresholds": ("lsh-thresholds", {"bits": 40}),
    "itq": ("itq", {"bits": 16, "seed": 7}),
    "itq-wide": ("itq", {"bits": 64}),
    "pq": ("pq", {"bits": 32}),
    "opq": ("opq", {"bits": 32, "train_iters": 2}),
    "lsq": ("lsq", {"bits": 32, "train_iters": 1, "encode_ils_iters": 2}),
}


@pytest.mark.parametrize("case", sorted(ROUND_TRIP_METHODS))
def test_method_round_trip_gives_identical_codes(case):
    xt, x = _small(), _small(300, seed=1)
    method, options = ROUND_TRIP_METHODS[case]
    t, codec = fit_method(method, xt, **options)
    config = json.loads(json.dumps(t.get_config()))  # what the model file stores
    t2 = type(t).from_state(config, {k: np.array(v) for k, v in t.get_weights().items()})
    assert (t2.d_in, t2.d_out) == (t.d_in, t.d_out) == (32, config["d_out"])
    np.testing.assert_array_equal(t2.apply(x), t.apply(x))
    assert all(w.dtype.kind == "f" for w in t.get_weights().values())

    c2 = type(codec).from_state(json.loads(json.dumps(codec.get_config())),
                                {k: np.array(v) for k, v in codec.get_arrays().items()})
    assert c2.code_size == codec.code_size and c2.code_bits == codec.code_bits
    codes = codec.encode(t.apply(x))
    assert codes.dtype == np.uint8 and codes.shape == (300, codec.code_size)
    np.testing.assert_array_equal(c2.encode(t2.apply(x)), codes)
    D1, I1 = search(codec, t.apply_query(x[:7]), [codes], 10)
    D2, I2 = search(c2, t2.apply_query(x[:7]), [codes], 10)
    np.testing.assert_array_equal(I1, I2)
    np.testing.assert_array_equal(D1, D2)


@pytest.mark.parametrize("codec_cls", [PQCodec, OPQCodec, LSQCodec])
def test_codec_arrays_are_plain_float32(codec_cls):
    codec = codec_cls(bits=32, **({} if codec_cls is PQCodec else {"train_iters": 1})).fit(_small())
    arrays = codec.get_arrays()
    assert arrays and all(a.dtype == np.float32 for a in arrays.values())
    assert codec.get_config()["M"] == 4 and codec.code_size == 4 and codec.code_bits == 32


def test_opq_rotation_is_orthonormal_and_decode_returns_to_input_space():
    xt = _small()
    codec = OPQCodec(bits=32, train_iters=2).fit(xt)
    R = codec.get_arrays()["rotation"]
    np.testing.assert_allclose(R @ R.T, np.eye(32), atol=1e-4)
    rel = np.linalg.norm(codec.decode(codec.encode(xt)) - xt) / np.linalg.norm(xt)
    assert rel < 0.5


def test_opq_dout_keeps_orthonormal_rows_and_its_state_round_trips():
    xt = _small(d=40)
    codec = OPQCodec(bits=64, train_iters=2, dout=24).fit(xt)
    R = codec.get_arrays()["rotation"]
    assert R.shape == (24, 40) and codec.get_config()["dout"] == 24 and codec.code_size == 8
    np.testing.assert_allclose(R @ R.T, np.eye(24), atol=1e-4)
    assert codec.decode(codec.encode(xt)).shape == xt.shape  # back in the input space (R's row space)
    again = OPQCodec.from_state(codec.get_config(), codec.get_arrays())
    np.testing.assert_array_equal(again.encode(xt), codec.encode(xt))
    plain = OPQCodec(bits=32, train_iters=1).fit(xt)  # no --dout: D = d, and the state says so
    assert OPQCodec.from_state(plain.get_config(), plain.get_arrays()).dout is None


@pytest.mark.parametrize("bits,dout,message", [
    (96, None, "or --dout 36 (faiss OPQ12_36"),  # 12 does not divide 40: the fix names the dout that works
    (96, 30, "does not divide --dout 30"),
    (64, 48, "--dout 48 is more than the input's 40 dimensions"),
])
def test_opq_refuses_a_dout_that_cannot_work_and_names_the_fix(bits, dout, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        OPQCodec(bits=bits, train_iters=1, dout=dout).fit(_small(d=40))


# --- the pipeline (train -> encode -> search) --------------------------------------------------------


@pytest.fixture
def sift_file(sift, tmp_path):
    path = tmp_path / "sift.h5"
    with h5py.File(path, "w") as f:
        f.attrs["distance"] = "euclidean"
        f.create_dataset("train", data=sift["xb"].astype(np.uint8))
        f.create_dataset("test", data=sift["xq"].astype(np.uint8))
        f.create_dataset("learn", data=sift["xt"].astype(np.uint8))
    return str(path)


def test_pipeline_pq_method_uses_its_codec(sift, sift_file, tmp_path):
    from vecspread.stages.encode import encode_dataset
    from vecspread.stages.train import train_model
    from vecspread.stages.search import search_codes

    model, codes, results = (str(tmp_path / n) for n in ("m.h5", "c.h5", "r.h5"))
    train_model(sift_file, model, "pq", {"bits": 64})
    summary = encode_dataset(model, sift_file, codes, None, {}, block_size=7000)
    assert (summary["codec"], summary["code_size"], summary["bits"]) == ("pq", 8, 64)
    search_codes(codes, sift_file, results, k=100, block_size=6000)
    with h5py.File(results) as f:
        I = f["neighbors"][()]

    ref = faiss.IndexPQ(128, 8, 8)
    ref.train(sift["xt"])
    ref.add(sift["xb"])
    _, I_ref = ref.search(sift["xq"], 100)
    ours, theirs = recalls(I, sift), recalls(I_ref, sift)
    assert all(abs(ours[k] - theirs[k]) <= 0.01 for k in ours), (ours, theirs)


def test_pipeline_identity_then_opq_codec(sift, sift_file, tmp_path):
    """A transform feeds a PQ-family codec at encode time ("Catalyst + OPQ"); the codec trains on the learn set."""
    from vecspread.stages.encode import encode_dataset
    from vecspread.stages.train import train_model

    model, codes = str(tmp_path / "m.h5"), str(tmp_path / "c.h5")
    train_model(sift_file, model, "identity", {})
    encode_dataset(model, sift_file, codes, "opq", {"bits": 64, "train_iters": 1})
    with h5py.File(codes) as f:
        stored = f["codes"][()]
        assert f["codec"].attrs["type"] == "opq"
    direct = OPQCodec(bits=64, train_iters=1).fit(sift["xt"])
    np.testing.assert_array_equal(stored, direct.encode(sift["xb"]))


def test_pipeline_refuses_codec_options_for_model_codec(sift_file, tmp_path):
    from vecspread.stages.encode import encode_dataset
    from vecspread.stages.train import train_model

    model = str(tmp_path / "m.h5")
    train_model(sift_file, model, "lsh", {"bits": 32})
    with pytest.raises(ConfigError, match="--bits"):
        encode_dataset(model, sift_file, str(tmp_path / "c.h5"), None, {"bits": 64})
    with pytest.raises(ConfigError, match="--train-iters does not apply to --method lsh"):
        train_model(sift_file, str(tmp_path / "m2.h5"), "lsh", {"bits": 32, "train_iters": 3})


# --- errors users can cause ---------------------------------------------------------------------------


def _method(name, **options):
    return lambda: fit_method(name, _small(400), **options)


def _codec(cls, **options):
    return lambda: cls(**options).fit(_small(400))


@pytest.mark.parametrize("fit", [
    _method("pq", bits=60), _method("opq", bits=12), _method("lsq", bits=30),
    _codec(PQCodec, bits=7), _codec(OPQCodec, bits=0), _codec(LSQCodec, bits=-8),
    _method("lsh", bits=20), _method("lsh-thresholds", bits=4), _method("itq", bits=33),
])
def test_bits_not_a_multiple_of_8(fit):
    with pytest.raises(ConfigError, match="multiple of 8"):
        fit()


@pytest.mark.parametrize("fit", [_method("pq", bits=24), _method("opq", bits=40), _codec(PQCodec, bits=56),
                                 _codec(OPQCodec, bits=24)])
def test_m_must_divide_d(fit):
    with pytest.raises(ConfigError, match=r"does not divide the dimension 32; choose --bits among 8, 16, 32, 64, 128, 256"):
        fit()


def test_lsq_takes_m_not_dividing_d():
    codec = LSQCodec(bits=40, train_iters=1, encode_ils_iters=1).fit(_small(400))  # M = 5, d = 32
    assert codec.code_size == 5


@pytest.mark.parametrize("fit", [_method("pq"), _method("opq"), _method("lsq"), _method("lsh"), _method("itq"),
                                 _codec(PQCodec), _codec(OPQCodec), _codec(LSQCodec)])
def test_bits_required(fit):
    with pytest.raises(ConfigError, match="needs --bits"):
        fit()


def test_other_user_errors():
    with pytest.raises(ConfigError, match="at least 4 codebooks"):
        LSQCodec(bits=24).fit(_small(400))
    with pytest.raises(ConfigError, match="at least 256 training vectors"):
        PQCodec(bits=32).fit(_small(100))
    with pytest.raises(ConfigError, match="--train-iters must be at least 1"):
        OPQCodec(bits=32, train_iters=0).fit(_small(400))
    with pytest.raises(ConfigError, match="--seed"):
        LSHTransform(bits=32, seed=2**40).fit(_small(400))
    codec = PQCodec(bits=32).fit(_small(400))
    with pytest.raises(ConfigError, match="dimension 32"):
        codec.encode(np.zeros((3, 16), np.float32))
