"""Tests of NPhash: the batch loss and relaxed similarities against numpy brute force, codes = signs of
the embedding layer (numpy forward pass), validation recall against brute force, bit-for-bit
reproducibility and resume (epoch boundary and mid-epoch), model round trip through HDF5.
All tiny and CPU-only."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

torch = pytest.importorskip("torch")
faiss = pytest.importorskip("faiss")

from conftest import fit_method  # noqa: E402
from vecspread.codecs.sign.codec import SignCodec  # noqa: E402
from vecspread.errors import ConfigError, InputError  # noqa: E402
from vecspread.io.components import read_component, write_component  # noqa: E402
from vecspread.neural.checkpoint import read_checkpoint  # noqa: E402
from vecspread.neural.validation import kept_epoch  # noqa: E402
from vecspread.runtime import RunSettings  # noqa: E402
from vecspread.transforms.nphash.transform import (  # noqa: E402
    NPHashTransform,
    nphash_batch_loss,
    relaxed_hamming_similarity,
    relaxed_sign,
)
from conftest import ProgressRecorder, checkpoint_members, weights_equal  # noqa: E402
from torch_fixtures import one_thread  # noqa: F401  (autouse: every test runs on one thread)

# small enough that one fit takes well under a second on one thread
TINY = dict(bits=16, dint=32, k=10, proxies=200, batch_size=64, epochs=2, seed=3, val_size=(300, 40))


@pytest.fixture(scope="module")
def clustered(nonnegative_clusters) -> np.ndarray:
    return nonnegative_clusters


def _numeric_history(h: list[dict]) -> list[dict]:
    """History without the timings, which differ between runs."""
    return [{k: v for k, v in r.items() if not k.startswith("t_")} for r in h]


# ------------------------------------------------------------------ loss and similarities


def _np_batch_loss(x, W, bvec, q_ids, p_ids, k, beta, tau_in, tau_out, kl):
    """Brute force in float64: cosine k-NN among the proxies (query id excluded), embeddings of every
    proxy, relaxed signs, softmaxes, KL averaged over queries. Also the number of distinct neighbours."""
    x = x.astype(np.float64)
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    u = x @ W.T.astype(np.float64) + bvec
    f = np.tanh(beta * u / np.linalg.norm(u, axis=1, keepdims=True))
    bits = W.shape[0]
    losses, used = [], set()
    for qi in q_ids:
        cands = [j for j in p_ids if j != qi]
        cos = np.array([unit[qi] @ unit[j] for j in cands])
        nn = [cands[i] for i in np.argsort(-cos, kind="stable")[:k]]
        used.update(nn)
        s_in = np.array([unit[qi] @ unit[j] for j in nn])
        s_out = np.array([f[qi] @ f[j] / (2 * bits) + 0.5 for j in nn])
        p = np.exp(s_in / tau_in - (s_in / tau_in).max())
        p /= p.sum()
        q = np.exp(s_out / tau_out - (s_out / tau_out).max())
        q /= q.sum()
        losses.append(np.sum(p * np.log(p / q)) if kl == "pq" else np.sum(q * np.log(q / p)))
    return float(np.mean(losses)), len(used)


@pytest.mark.parametrize("kl,tau_in,tau_out", [("pq", 0.05, 0.02), ("qp", 0.05, 0.02), ("pq", 1.0, 1.0)])
def test_batch_loss_matches_numpy_brute_force(kl, tau_in, tau_out):
    rng = np.random.default_rng(1)
    n, d, bits, k, beta = 80, 8, 16, 7, 4.0
    x = rng.uniform(0, 1, size=(n, d)).astype(np.float32)
    lin = torch.nn.Linear(d, bits)  # a network numpy can replicate: u = x W^T + b
    W, bvec = lin.weight.detach().numpy(), lin.bias.detach().numpy()
    q_ids = np.array([3, 10, 11, 40, 79])
    p_ids = np.array([10, 2, 3, 5, 7, 9, 12, 15, 20, 22, 25, 30, 33, 41, 50, 60, 70, 78])  # holds queries 3, 10
    xu = x / np.linalg.norm(x, axis=1, keepdims=True)
    loss, n_used, _ = nphash_batch_loss(
        lin, torch.from_numpy(x), torch.from_numpy(xu), torch.from_numpy(q_ids), torch.from_numpy(p_ids),
        k, beta, tau_in, tau_out, kl,
    )
    want, want_used = _np_batch_loss(x, W, bvec, q_ids, p_ids, k, beta, tau_in, tau_out, kl)
    assert loss.item() == pytest.approx(want, rel=1e-4, abs=1e-6)
    assert n_used == want_used
    loss.backward()
    assert lin.weight.grad is not None and torch.isfinite(lin.weight.grad).all()


def test_relaxed_hamming_of_pm1_vectors_is_one_minus_normalised_hamming():
    rng = np.random.default_rng(2)
    for bits in (8, 64, 768):
        a = rng.choice([-1.0, 1.0], size=(50, bits)).astype(np.float32)
        b = rng.choice([-1.0, 1.0], size=(50, bits)).astype(np.float32)
        b[0] = a[0]  # identical: similarity 1
        b[1] = -a[1]  # opposite: similarity 0
        got = relaxed_hamming_similarity(torch.from_numpy(a), torch.from_numpy(b)).numpy()
        want = 1 - (a != b).sum(1) / bits
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
        assert got[0] == 1 and got[1] == 0


def test_relaxed_sign_keeps_signs_and_tends_to_sign():
    rng = np.random.default_rng(3)
    u = torch.from_numpy(rng.normal(size=(100, 32)).astype(np.float32))
    f = relaxed_sign(u, beta=np.sqrt(32))
    assert torch.equal(torch.sign(f), torch.sign(u))
    assert (f.abs() < 1).all()
    far = (u.abs() / u.norm(dim=1, keepdim=True) > 1e-3).numpy()  # tanh(1e5 * 1e-3) = 1 in float32
    np.testing.assert_array_equal(relaxed_sign(u, beta=1e5).numpy()[far], torch.sign(u).numpy()[far])


# ------------------------------------------------------------------ inference


def _np_embedding(t: NPHashTransform, x: np.ndarray) -> np.ndarray:
    """The eval-mode network in numpy from the stored weights: [Linear, BN, ReLU] x L, Linear (, BN with
    ``embedding_bn``)."""
    w = t.get_weights()

    def bn(h: np.ndarray, j: int) -> np.ndarray:
        h = (h - w[f"net.{j}.running_mean"]) / np.sqrt(w[f"net.{j}.running_var"] + 1e-5)
        return h * w[f"net.{j}.weight"] + w[f"net.{j}.bias"]

    h = x.astype(np.float64) * float(w["input_scale"][0])
    i = 0
    for _ in range(t.hidden_layers):
        h = np.maximum(bn(h @ w[f"net.{i}.weight"].T + w[f"net.{i}.bias"], i + 1), 0)
        i += 3
    u = h @ w[f"net.{i}.weight"].T + w[f"net.{i}.bias"]
    return bn(u, i + 1) if t.embedding_bn else u


@pytest.mark.parametrize("embedding_bn", [False, True])
def test_sign_codes_are_the_signs_of_the_embedding_layer(clustered, embedding_bn):
    t = NPHashTransform(**TINY, embedding_bn=embedding_bn).fit(clustered)
    assert sum(isinstance(m, torch.nn.BatchNorm1d) for m in t.net_.modules()) == 2 + embedding_bn
    y = t.apply(clustered)
    assert y.shape == (1200, 16) and y.dtype == np.float32
    ref = _np_embedding(t, clustered)
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-4)
    codes = SignCodec().fit(y).encode(y)
    sure = np.abs(ref) > 1e-3  # bits whose sign float32 vs float64 cannot flip
    want = np.packbits(np.where(sure, ref > 0, y > 0), axis=1, bitorder="little")
    assert np.array_equal(codes, want)
    assert np.array_equal(codes, np.packbits(y > 0, axis=1, bitorder="little"))
    assert t.apply(clustered[:0]).shape == (0, 16)
    with pytest.raises(InputError, match="dimension"):
        t.apply(clustered[:, :8])
    # the method trains with its codec: the sign bits, so encode needs no --codec
    t2, codec = fit_method("nphash", clustered, **TINY, embedding_bn=embedding_bn)
    assert isinstance(codec, SignCodec) and codec.code_bits == 16
    assert np.array_equal(codec.encode(t2.apply(clustered)), codes)


def test_validation_recall_matches_brute_force(clustered):
    """The history's recall of the kept model equals a numpy recomputation on the held-out split."""
    t = NPHashTransform(**TINY).fit(clustered)
    perm = np.random.default_rng(TINY["seed"]).permutation(len(clustered))
    ndb, nq = TINY["val_size"]
    xq, xdb = clustered[np.sort(perm[:nq])], clustered[np.sort(perm[nq : nq + ndb])]
    cq, cdb = t.apply(xq) > 0, t.apply(xdb) > 0
    ham = (cq[:, None, :] != cdb[None, :, :]).sum(-1)
    d2 = ((xq[:, None, :].astype(np.float64) - xdb[None, :, :]) ** 2).sum(-1)
    rec = next(r for r in t.history_ if r["epoch"] == t.best_epoch_)
    for k in (1, 10, 100):
        hits = 0
        for i in range(nq):
            ranked = np.lexsort((np.arange(ndb), ham[i]))[:k]  # Hamming, ties by id as SignCodec
            hits += bool(np.isin(ranked, np.flatnonzero(d2[i] <= d2[i].min() * (1 + 1e-6))).any())
        assert rec[f"sign_r{k}"] == pytest.approx(hits / nq)
    assert t.best_epoch_ == kept_epoch([(r["epoch"], r["sign_r10"]) for r in t.history_], nq)


# ------------------------------------------------------------------ training runs





def test_fixed_seed_is_reproducible_and_reports(clustered):
    rec = ProgressRecorder()
    a = NPHashTransform(**TINY).fit(clustered, progress=rec)
    b = NPHashTransform(**TINY).fit(clustered)
    assert weights_equal(a.get_weights(), b.get_weights())
    assert _numeric_history(a.history_) == _numeric_history(b.history_)
    assert rec.total == rec.done == 2 * -(-(1200 - 340) // 64)
    epoch_lines = [s for s in rec.lines if s.startswith("epoch ")]
    assert len(epoch_lines) == 2 and "sign 1-R@1/10/100" in epoch_lines[0]
    assert all(np.isfinite(r["loss"]) and 0 <= r["sign_r10"] <= 1 for r in a.history_)
    c = NPHashTransform(**{**TINY, "seed": 4}).fit(clustered)
    assert not weights_equal(a.get_weights(), c.get_weights())


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_resume_after_an_epoch_continues_bit_for_bit(clustered, tmp_path, optimizer):
    params = {**TINY, "epochs": 3, "optimizer": optimizer, "lr": 1e-3 if optimizer == "adam" else 0.05}
    full = NPHashTransform(**params).fit(clustered)

    ck = str(tmp_path / "ck.h5")
    with pytest.raises(KeyboardInterrupt):
        NPHashTransform(**params).fit(clustered, progress=ProgressRecorder(stop_after_epoch=1), run=RunSettings(checkpoint=ck))
    assert read_checkpoint(ck, "nphash")[0]["epoch"] == 1

    rec = ProgressRecorder()
    resumed = NPHashTransform(**params).fit(clustered, progress=rec, run=RunSettings(resume=ck, checkpoint=ck))
    assert weights_equal(full.get_weights(), resumed.get_weights())
    assert _numeric_history(full.history_) == _numeric_history(resumed.history_)
    assert resumed.best_epoch_ == full.best_epoch_
    assert read_checkpoint(ck, "nphash")[0]["epoch"] == 3
    assert rec.done == rec.total

    with pytest.raises(ConfigError, match="tau_out"):
        NPHashTransform(**{**params, "tau_out": 0.5}).fit(clustered, run=RunSettings(resume=ck))
    with pytest.raises(ConfigError, match="training data"):
        NPHashTransform(**params).fit(clustered * 2, run=RunSettings(resume=ck))


def test_budget_stop_mid_epoch_then_resume_equals_uninterrupted(clustered, tmp_path):
    params = {**TINY, "val_size": 0}  # without validation the kept model is the last one
    full = NPHashTransform(**params).fit(clustered)

    ck = str(tmp_path / "ck.h5")
    stopped = NPHashTransform(**params).fit(clustered, run=RunSettings(checkpoint=ck, max_minutes=1e-9))
    assert stopped.history_[-1]["partial"] and stopped.history_[-1]["steps"] == 1
    meta, groups = read_checkpoint(ck, "nphash")
    assert (meta["epoch"], meta["step"]) == (0, 1) and "order" in groups["epoch"]
    assert not weights_equal(full.get_weights(), stopped.get_weights())

    resumed = NPHashTransform(**params).fit(clustered, run=RunSettings(resume=ck))
    assert weights_equal(full.get_weights(), resumed.get_weights())
    # the history keeps the record of the stop, then the same epochs as the uninterrupted run
    assert _numeric_history(resumed.history_)[1:] == _numeric_history(full.history_)


def test_checkpoint_holds_only_numeric_datasets(clustered, tmp_path):
    ck = tmp_path / "ck.h5"
    NPHashTransform(**{**TINY, "epochs": 1}).fit(clustered, run=RunSettings(checkpoint=str(ck)))
    assert [p.name for p in tmp_path.iterdir()] == ["ck.h5"]  # no temp file left behind
    found = checkpoint_members(ck)
    want = {"meta", "rng/torch", "model/net.0.weight", "optimizer/0/exp_avg", "optimizer/0/step", "best/net.0.weight"}
    assert want <= set(found)


@pytest.mark.parametrize("embedding_bn", [False, True])
def test_from_state_round_trip_through_hdf5(clustered, tmp_path, embedding_bn):
    t = NPHashTransform(**{**TINY, "epochs": 1}, embedding_bn=embedding_bn).fit(clustered)
    path = tmp_path / "model.h5"
    with h5py.File(path, "w") as f:
        write_component(f.create_group("transform"), t.name, t.get_config(), t.get_weights())
    with h5py.File(path, "r") as f:
        _, config, weights = read_component(f["transform"], str(path))
    u = NPHashTransform.from_state(config, weights)
    assert np.array_equal(u.apply(clustered), t.apply(clustered))
    assert u.get_config() == t.get_config() and u.d_out == 16 and config["beta"] == 4.0
    with pytest.raises(InputError, match="do not match"):
        NPHashTransform.from_state({**config, "dint": 64}, weights)
    with pytest.raises(InputError, match="do not match"):  # the embedding's batch norm is part of the network
        NPHashTransform.from_state({**config, "embedding_bn": not embedding_bn}, weights)


@pytest.mark.parametrize("kwargs", [
    {"bits": 12}, {"bits": 0}, {"kl": "pp"}, {"optimizer": "rmsprop"}, {"tau_in": 0.0}, {"tau_out": -1.0},
    {"beta": 0.0}, {"batch_size": 1.5}, {"val_size": (1, 2, 3)},
])
def test_bad_parameters_are_config_errors(kwargs, clustered):
    with pytest.raises(ConfigError):
        NPHashTransform(**{**TINY, **kwargs}).fit(clustered)


@pytest.mark.parametrize("run", [{"device": "tpu"}, {"max_minutes": 0}])
def test_bad_run_settings_are_config_errors(run, clustered):
    with pytest.raises(ConfigError):
        fit_method("nphash", clustered, **TINY, **run)


def test_too_few_proxies_and_bad_input(clustered):
    with pytest.raises(ConfigError, match="proxies"):
        NPHashTransform(**{**TINY, "k": 200}).fit(clustered)
    with pytest.raises(InputError):
        NPHashTransform(**TINY).fit(np.full((100, 4), np.nan, np.float32))
