"""Tests of the catalyzer transform: losses vs numpy, straight-through quantizer, network layout,
bit-for-bit reproducibility and resume, model round trip, checkpoint contents. All tiny and CPU-only."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

torch = pytest.importorskip("torch")
faiss = pytest.importorskip("faiss")

from vecspread.codecs.lattice.codec import LatticeCodec  # noqa: E402
from vecspread.errors import ConfigError, InputError  # noqa: E402
from vecspread.neural.checkpoint import read_checkpoint  # noqa: E402
from vecspread.neural.validation import kept_epoch, recall_stderr  # noqa: E402
from vecspread.runtime import RunSettings  # noqa: E402
from vecspread.transforms.catalyzer.transform import (  # noqa: E402
    CatalyzerTransform,
    exclude_self,
    koleo_loss,
    n_batches,
    positive_lists,
    straight_through,
    triplet_loss,
)
from conftest import ProgressRecorder, checkpoint_members  # noqa: E402
from torch_fixtures import one_thread  # noqa: F401  (autouse: every test runs on one thread)

# small enough that one fit takes well under a second on one thread
TINY = dict(dout=8, dint=32, epochs=2, bits=16, seed=3)


@pytest.fixture(scope="module")
def clustered() -> np.ndarray:
    """(2000, 16) float32: 20 Gaussian clusters, a few exact duplicates, SIFT-like scale."""
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(20, 16)) * 50
    x = centres[rng.integers(20, size=2000)] + 15 * rng.normal(size=(2000, 16))
    x[1:6] = x[0]  # exact duplicates: positives and KoLeo must cope
    return x.astype(np.float32)


def _weights_equal(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def _numeric_history(h: list[dict]) -> list[dict]:
    """History without the timings, which differ between runs."""
    return [{k: v for k, v in r.items() if not k.startswith("t_")} for r in h]


# ------------------------------------------------------------------ losses


def _np_koleo(y: np.ndarray) -> float:
    d = np.sqrt(((y[:, None, :].astype(np.float64) - y[None, :, :]) ** 2).sum(-1))
    np.fill_diagonal(d, np.inf)
    return float(-np.mean(np.log(d.min(axis=1) + 1e-8)))


def test_koleo_matches_numpy_brute_force():
    rng = np.random.default_rng(1)
    for n, d in ((64, 24), (7, 3)):
        y = rng.normal(size=(n, d)).astype(np.float32)
        y /= np.linalg.norm(y, axis=1, keepdims=True)
        got = koleo_loss(torch.from_numpy(y)).item()
        assert got == pytest.approx(_np_koleo(y), rel=1e-5, abs=1e-5)


def test_koleo_with_duplicates_is_finite_and_has_finite_gradient():
    rng = np.random.default_rng(2)
    y = rng.normal(size=(16, 8)).astype(np.float32)
    y[3] = y[0]
    y[9] = y[0]
    t = torch.from_numpy(y).requires_grad_(True)
    loss = koleo_loss(t)
    loss.backward()
    assert np.isfinite(loss.item())
    assert loss.item() == pytest.approx(_np_koleo(y), rel=1e-5)
    assert torch.isfinite(t.grad).all()


def test_triplet_loss_matches_numpy_brute_force():
    rng = np.random.default_rng(3)
    ya, yp, yn = (rng.normal(size=(32, 12)).astype(np.float32) for _ in range(3))
    yp[0] = ya[0]  # zero positive distance (duplicate positive)
    dp = np.linalg.norm(ya.astype(np.float64) - yp, axis=1)
    dn = np.linalg.norm(ya.astype(np.float64) - yn, axis=1)
    want = np.maximum(dp - dn, 0).mean()
    ta = torch.from_numpy(ya).requires_grad_(True)
    loss, viol = triplet_loss(ta, torch.from_numpy(yp), torch.from_numpy(yn), return_violations=True)
    assert loss.item() == pytest.approx(want, rel=1e-5)
    assert viol.item() == pytest.approx(np.mean(dp - dn > 0))
    loss.backward()
    assert torch.isfinite(ta.grad).all()


# ------------------------------------------------------------------ straight-through lattice


def test_straight_through_gradient_is_identity():
    codec = LatticeCodec(bits=24).fit(np.zeros((1, 6), np.float32))
    y = torch.randn(5, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float32)
    jac = torch.autograd.functional.jacobian(lambda v: straight_through(v, codec.quantize), y)
    assert torch.equal(jac.reshape(30, 30), torch.eye(30))


def test_training_quantizer_equals_codec_decode_encode():
    t = CatalyzerTransform(dout=24, bits=64)
    train_codec = t._lattice_codec().fit(np.eye(1, 24, dtype=np.float32))  # the one fit() uses
    y = np.random.default_rng(4).normal(size=(200, 24)).astype(np.float32)
    y /= np.linalg.norm(y, axis=1, keepdims=True)
    q = straight_through(torch.from_numpy(y), train_codec.quantize).numpy()
    ref = LatticeCodec(bits=64).fit(y)
    assert ref.r2_ == 79  # the paper's 24-d, 64-bit lattice
    np.testing.assert_array_equal(q, ref.decode(ref.encode(y)))


# ------------------------------------------------------------------ network


@pytest.mark.parametrize("order", ["bn-relu", "relu-bn"])
def test_network_layout(order):
    net = CatalyzerTransform(dout=8, dint=32, hidden_layers=2, bn_order=order).build_network(16)
    kinds = [type(m).__name__ for m in net.net]
    mid = ["BatchNorm1d", "ReLU"] if order == "bn-relu" else ["ReLU", "BatchNorm1d"]
    assert kinds == ["Linear", *mid, "Linear", *mid, "Linear", "L2Normalize"]
    shapes = [(m.in_features, m.out_features) for m in net.net if isinstance(m, torch.nn.Linear)]
    assert shapes == [(16, 32), (32, 32), (32, 8)]
    assert "net.0.weight" in net.state_dict()
    y = net.eval()(torch.randn(4, 16))
    np.testing.assert_allclose(torch.linalg.vector_norm(y, dim=1).detach().numpy(), 1, rtol=1e-5)
    one_block = [type(m).__name__ for m in CatalyzerTransform(dout=8, dint=32, hidden_layers=1,
                                                                bn_order=order).build_network(16).net]
    assert one_block == ["Linear", *mid, "Linear", "L2Normalize"]


# ------------------------------------------------------------------ helpers


def test_exclude_self_handles_duplicates():
    I = np.array([[0, 5, 7], [2, 1, 3], [0, 3, 4]])  # row 2 lost itself to duplicates
    np.testing.assert_array_equal(exclude_self(I, 2), [[5, 7], [2, 3], [0, 3]])


def test_positive_lists_match_brute_force(clustered):
    x = clustered[:300]
    d = ((x[:, None, :].astype(np.float64) - x[None, :, :]) ** 2).sum(-1)
    order = np.lexsort((np.broadcast_to(np.arange(300), d.shape), d), axis=1)  # by distance, then id
    others = np.array([[j for j in row if j != i][:4] for i, row in enumerate(order)])
    P = positive_lists(x, 4, self_positive=False)
    for i in range(300):  # ties (the duplicates 0..5) may come in any order: compare the distances
        np.testing.assert_allclose(np.sort(d[i, P[i]]), d[i, others[i]], rtol=1e-4, atol=1e-3)
        assert i not in P[i]
    S = positive_lists(x, 4, self_positive=True)
    np.testing.assert_array_equal(S[:, 0], np.arange(300))
    for i in range(300):
        np.testing.assert_allclose(np.sort(d[i, S[i, 1:]]), d[i, others[i, :3]], rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("options", [dict(bn_stats="per-role"), dict(self_positive=True)])
def test_reference_variants_train_and_differ_from_the_default(clustered, options):
    base = CatalyzerTransform(**TINY).fit(clustered)
    a = CatalyzerTransform(**TINY, **options).fit(clustered)
    b = CatalyzerTransform(**TINY, **options).fit(clustered)
    assert _weights_equal(a.get_weights(), b.get_weights())  # still reproducible
    assert not _weights_equal(a.get_weights(), base.get_weights())
    assert all(np.isfinite(r["triplet"]) for r in a.history_)


def test_kept_epoch_is_the_latest_within_one_standard_error_of_the_best():
    assert recall_stderr(0.8, 1000) == pytest.approx(0.012649, abs=1e-6)
    assert recall_stderr(0.0, 1000) == 0.0 and recall_stderr(1.0, 10) == 0.0
    assert kept_epoch([], 1000) is None
    # epoch 8 at 0.794 is within 0.0126 of epoch 7's 0.806: the later one is kept
    assert kept_epoch([(6, 0.79), (7, 0.806), (8, 0.794)], 1000) == 8
    # 0.79 is not within it: the best is kept
    assert kept_epoch([(6, 0.79), (7, 0.806), (8, 0.79)], 1000) == 7
    # fewer queries, wider tolerance
    assert kept_epoch([(6, 0.79), (7, 0.806), (8, 0.77)], 100) == 8
    # an exact 1.0 has no tolerance; equal scores keep the later epoch
    assert kept_epoch([(1, 1.0), (2, 0.999)], 1000) == 1
    assert kept_epoch([(1, 0.5), (2, 0.5)], 1000) == 2


def test_training_keeps_the_epoch_the_rule_picks(clustered):
    rec = ProgressRecorder()
    # this seed and split give a later epoch within one standard error of an earlier best
    t = CatalyzerTransform(**{**TINY, "seed": 4, "epochs": 4, "val_size": (0, 40)}).fit(clustered, progress=rec)
    scores = [(r["epoch"], r["lattice_r10"]) for r in t.history_]
    strict_best = max(scores, key=lambda es: (es[1], -es[0]))[0]
    assert t.best_epoch_ == kept_epoch(scores, 40) != strict_best
    assert rec.lines[-1].startswith(f"kept the model of epoch {t.best_epoch_} ") and "standard error" in rec.lines[-1]


def test_lr_schedule_and_default_lambda():
    t = CatalyzerTransform(epochs=160)
    lrs = [t.lr_at(e) for e in range(160)]
    assert lrs[79] == 0.1 and lrs[80] == 0.05 and lrs[119] == 0.05 and lrs[120] == 0.01 and lrs[-1] == 0.01
    assert [CatalyzerTransform(epochs=8).lr_at(e) for e in range(8)] == [0.1] * 4 + [0.05] * 2 + [0.01] * 2
    half = [CatalyzerTransform(epochs=4, lr=0.05).lr_at(e) for e in range(4)]
    assert half == pytest.approx([0.05, 0.05, 0.025, 0.005])
    lam = {d: CatalyzerTransform(dout=d).effective_lam() for d in (8, 16, 20, 24, 32, 40, 64)}
    assert lam == {8: 0.05, 16: 0.05, 20: 0.05, 24: 0.02, 32: 0.01, 40: 0.005, 64: 0.005}
    assert CatalyzerTransform(lam=0.3).effective_lam() == 0.3
    assert n_batches(130, 64) == 3 and n_batches(129, 64) == 2


@pytest.mark.parametrize(
    "kwargs", [dict(bn_order="bn"), dict(dout=0), dict(quantizer_train="pq"), dict(val_codec="pq"), dict(lam=-1.0),
               dict(bn_stats="split"), dict(self_positive=True, kpos=1)]
)
def test_bad_parameters_are_config_errors(kwargs, clustered):
    with pytest.raises(ConfigError):
        CatalyzerTransform(**{**TINY, **kwargs}).fit(clustered)


def test_bad_input_is_input_error(clustered):
    with pytest.raises(InputError):
        CatalyzerTransform(**TINY).fit(clustered[:, :, None])
    t = CatalyzerTransform(**{**TINY, "epochs": 1, "val_size": 0}).fit(clustered)
    with pytest.raises(InputError):
        t.apply(clustered[:, :8])


# ------------------------------------------------------------------ training





def test_every_long_phase_shows_progress(clustered):
    """Issue 14: positives, mining and each epoch are units of work that finish; from the second epoch
    the bar's label carries the last loss and validation recall."""
    rec = ProgressRecorder()
    CatalyzerTransform(**TINY).fit(clustered, progress=rec)
    names = [t[0] for t in rec.tasks]
    assert names[0].startswith("positives:") and all(t[1] == t[2] for t in rec.tasks), rec.tasks
    assert [n for n in names if "mining" in n] == ["epoch 1/2: mining negatives", "epoch 2/2: mining negatives"]
    epochs = [n for n in names if n.startswith("catalyzer epoch")]
    assert epochs[0] == "catalyzer epoch 1/2" and "loss" in epochs[1] and "val 1-R@10" in epochs[1], epochs


def test_tiny_run_is_reproducible_and_reports(clustered):
    rec = ProgressRecorder()
    a = CatalyzerTransform(**TINY).fit(clustered, progress=rec)
    b = CatalyzerTransform(**TINY).fit(clustered)
    assert _weights_equal(a.get_weights(), b.get_weights())
    assert _numeric_history(a.history_) == _numeric_history(b.history_)
    assert rec.total == rec.done > 0
    epoch_lines = [s for s in rec.lines if s.startswith("epoch ")]
    assert len(epoch_lines) == 2 and "lattice 1-R@1/10/100" in epoch_lines[0] and "sign" in epoch_lines[0]
    h = a.get_config()["history"]
    assert [r["epoch"] for r in h] == [1, 2]
    assert all(np.isfinite(r["triplet"]) and np.isfinite(r["koleo"]) and 0 <= r["lattice_r10"] <= 1 for r in h)
    c = CatalyzerTransform(**{**TINY, "seed": 4}).fit(clustered)
    assert not _weights_equal(a.get_weights(), c.get_weights())


def test_default_validation_searches_held_out_queries_in_the_training_set(clustered):
    rec = ProgressRecorder()
    t = CatalyzerTransform(**{**TINY, "epochs": 1}).fit(clustered, progress=rec)
    assert any(line.startswith("catalyzer: 1980 training vectors") and "20 queries in the training set" in line
               for line in rec.lines)
    # reference: the same split, exact neighbours and Hamming ranking recomputed with numpy
    perm = np.random.default_rng(TINY["seed"]).permutation(len(clustered))
    xq, xdb = clustered[np.sort(perm[:20])], clustered[np.sort(perm[20:])]
    d = ((xq[:, None, :].astype(np.float64) - xdb[None, :, :]) ** 2).sum(-1)
    gt = d.argmin(axis=1)
    bq, bdb = t.apply(xq) > 0, t.apply(xdb) > 0
    ham = (bq[:, None, :] != bdb[None, :, :]).sum(-1)
    rank = np.lexsort((np.broadcast_to(np.arange(len(xdb)), ham.shape), ham), axis=1)
    for k in (1, 10, 100):
        expected = np.mean([gt[i] in rank[i, :k] for i in range(20)])
        assert t.history_[0][f"sign_r{k}"] == pytest.approx(expected)


def test_end_to_end_lattice_training_runs_and_logs(clustered, caplog):
    params = {**TINY, "epochs": 1, "quantizer_train": "lattice", "val_codec": "sign"}
    with caplog.at_level("INFO", logger="vecspread"):
        t = CatalyzerTransform(**params).fit(clustered)
    assert any(r.getMessage().startswith("epoch 1/1 lr 0.1 ") for r in caplog.records)
    y = t.apply(clustered[:50])
    assert y.shape == (50, 8) and y.dtype == np.float32
    assert np.isfinite(t.history_[0]["triplet"])


def test_resume_continues_bit_for_bit(clustered, tmp_path):
    full = CatalyzerTransform(**TINY).fit(clustered)

    ck = str(tmp_path / "ck.h5")
    with pytest.raises(KeyboardInterrupt):
        CatalyzerTransform(**TINY).fit(clustered, progress=ProgressRecorder(stop_after_epoch=1), run=RunSettings(checkpoint=ck))
    assert read_checkpoint(ck, "catalyzer")[0]["epoch"] == 1

    rec = ProgressRecorder()
    resumed = CatalyzerTransform(**TINY).fit(clustered, progress=rec, run=RunSettings(resume=ck, checkpoint=ck))
    assert _weights_equal(full.get_weights(), resumed.get_weights())
    assert _numeric_history(full.history_) == _numeric_history(resumed.history_)
    assert resumed.best_epoch_ == full.best_epoch_
    assert read_checkpoint(ck, "catalyzer")[0]["epoch"] == 2
    assert rec.done == rec.total  # the bar counts the resumed epochs as done

    with pytest.raises(ConfigError, match="lam"):
        CatalyzerTransform(**TINY, lam=0.5).fit(clustered, run=RunSettings(resume=ck))
    with pytest.raises(ConfigError, match="training data"):
        CatalyzerTransform(**TINY).fit(clustered * 2, run=RunSettings(resume=ck))


def test_checkpoint_holds_only_numeric_datasets(clustered, tmp_path):
    ck = tmp_path / "ck.h5"
    CatalyzerTransform(**{**TINY, "epochs": 1}).fit(clustered, run=RunSettings(checkpoint=str(ck)))
    assert [p.name for p in tmp_path.iterdir()] == ["ck.h5"]  # no temp file left behind
    found = checkpoint_members(ck)
    want = {"meta", "rng/torch", "model/net.0.weight", "optimizer/0/momentum_buffer", "best/net.0.weight"}
    assert want <= set(found)


def test_from_state_round_trip(clustered):
    t = CatalyzerTransform(**{**TINY, "epochs": 1}).fit(clustered)
    config, weights = t.get_config(), t.get_weights()
    assert all(isinstance(v, np.ndarray) for v in weights.values())
    assert weights["net.0.weight"].shape == (32, 16) and weights["input_scale"].dtype == np.float32
    u = CatalyzerTransform.from_state(config, weights)
    np.testing.assert_array_equal(u.apply(clustered), t.apply(clustered))
    assert u.d_in == 16 and u.d_out == 8 and u.history_ == t.history_


def test_time_budget_stops_at_the_step_that_reaches_it(clustered):
    # a budget far below one step: one step runs, is validated, and training stops there
    t = CatalyzerTransform(**{**TINY, "epochs": 5}).fit(clustered, run=RunSettings(max_minutes=1e-9))
    assert [(h["epoch"], h["steps"], h["partial"]) for h in t.history_] == [(1, 1, True)]
    assert "lattice_r10" in t.history_[0]
    unlimited = CatalyzerTransform(**{**TINY, "epochs": 2}).fit(clustered)
    assert [h["epoch"] for h in unlimited.history_] == [1, 2]


# ------------------------------------------------------------------ issue 16: mining and budgets


def test_ivf_mining_visiting_every_list_is_the_exact_search(clustered):
    from vecspread.transforms.catalyzer.transform import _knn, ivf_knn

    x = clustered[6:]  # no duplicates: no ties for the two searches to order differently
    exact = _knn(x, x, 11)
    assert (ivf_knn(x, x, 11, nprobe=10**4, seed=0) == exact).all()
    few = ivf_knn(x, x, 11, nprobe=1, seed=0)  # one list: approximate, and still complete
    assert (few >= 0).all() and np.mean([len(set(a) & set(b)) for a, b in zip(few, exact)]) / 11 > 0.5


def test_device_knn_is_the_exact_search(clustered):
    import vecspread.transforms.catalyzer.transform as cat

    x = clustered[6:]  # no duplicates: no ties to order differently
    exact = cat._knn(x[:300], x, 11)
    assert (cat.device_knn(x[:300], x, 11, torch.device("cpu")) == exact).all()
    # chunked: a distance matrix budget of 7 queries' rows
    with pytest.MonkeyPatch.context() as m:
        m.setattr(cat, "DEVICE_KNN_BYTES", 7 * 4 * len(x))
        rec = ProgressRecorder()
        assert (cat.device_knn(x[:300], x, 11, torch.device("cpu"), rec, "positives") == exact).all()
    assert rec.tasks and "exact, on cpu" in rec.tasks[0][0]


def test_ivf_mining_trains_and_differs_from_exact(clustered):
    rec = ProgressRecorder()
    a = CatalyzerTransform(**TINY, mining="ivf", nprobe=2).fit(clustered, progress=rec)
    assert any("IVF" in t[0] for t in rec.tasks), rec.tasks
    b = CatalyzerTransform(**TINY).fit(clustered)
    assert not _weights_equal(a.get_weights(), b.get_weights())


def test_auto_mining_is_exact_on_small_sets_and_ivf_on_large_ones(clustered, monkeypatch):
    import vecspread.transforms.catalyzer.transform as cat

    # a process's first fit can differ in the last float bits from later ones (kernel warm-up): not compared
    CatalyzerTransform(**{**TINY, "epochs": 1}).fit(clustered)
    small = CatalyzerTransform(**TINY).fit(clustered)
    assert small.get_params()["mining"] == "auto" and small.get_config()["mining"] == "exact"
    assert _weights_equal(small.get_weights(), CatalyzerTransform(**TINY, mining="exact").fit(clustered).get_weights())
    monkeypatch.setattr(cat, "AUTO_IVF_MIN", 100)  # this training set counts as large
    rec = ProgressRecorder()
    large = CatalyzerTransform(**TINY).fit(clustered, progress=rec)
    assert large.get_config()["mining"] == "ivf" and any("IVF" in t[0] for t in rec.tasks)
    assert _weights_equal(large.get_weights(), CatalyzerTransform(**TINY, mining="ivf").fit(clustered).get_weights())
    # on a GPU the exact searches run there (device_knn): auto stays exact at any size
    t = CatalyzerTransform()
    t._device = torch.device("cuda")  # only its type is read; no GPU needed
    assert t.effective_mining(10**6) == "exact" and CatalyzerTransform(mining="ivf").effective_mining(10) == "ivf"


def test_a_budget_spreads_the_whole_schedule_over_the_epochs_that_fit():
    import time as _time

    from vecspread.neural.trainer import _epochs_in_budget

    rec = ProgressRecorder()
    now = _time.perf_counter()
    assert _epochs_in_budget(160, 30.0, now + 100.0, rec, "catalyzer") == 4  # the one done + 3 more
    assert "fits 4 of the 160 epochs" in rec.lines[-1] and "decays included" in rec.lines[-1]
    assert _epochs_in_budget(8, 1.0, now + 1000.0, rec, "catalyzer") == 8
    assert _epochs_in_budget(8, 50.0, now + 1.0, rec, "catalyzer") == 1
    t = CatalyzerTransform(epochs=160)
    # the schedule over 4 epochs: every step of (0.1, 0.1, 0.05, 0.01), as over 160 at 0, 40, 80, 120
    assert [t.lr_at(e, 4) for e in range(4)] == [t.lr_at(e) for e in (0, 40, 80, 120)] == [0.1, 0.1, 0.05, 0.01]


def test_a_compressed_schedule_runs_its_epochs_with_every_decay(clustered, monkeypatch):
    import vecspread.neural.trainer as trainer

    monkeypatch.setattr(trainer, "_epochs_in_budget", lambda planned, seconds, deadline, report, name: 3)
    rec = ProgressRecorder()
    t = CatalyzerTransform(**{**TINY, "epochs": 8}).fit(clustered, run=RunSettings(max_minutes=60), progress=rec)
    assert [r["epoch"] for r in t.history_] == [1, 2, 3] and not any(r["partial"] for r in t.history_)
    # shorter than the 4-step schedule: it still ends on the final rate
    assert [r["lr"] for r in t.history_] == [t.lr_at(e, 3) for e in range(3)] == [0.1, 0.1, 0.01]
    assert t.get_config()["epochs_run"] == 3 and t.get_config()["epochs"] == 8
    assert any("completed its schedule of 3 epochs" in line for line in rec.lines), rec.lines


def test_a_budget_is_replanned_when_epochs_grow_slower():
    import time as _time

    from vecspread.neural.trainer import REPLAN_MARGIN, _replan

    rec = ProgressRecorder()
    now = _time.perf_counter()
    t = CatalyzerTransform(epochs=160)

    def replan(planned, epoch, seconds, left, last_lr=0.1, most=160):
        return _replan(planned, epoch, seconds, now + left, rec, "catalyzer", most, lambda p: t.lr_at(epoch, p),
                       last_lr)

    # 5 epochs done, 100 s left, recent epochs 10 s each (11 s with the margin): 9 more fit
    assert replan(50, 5, [10.0] * 3, 100.0) == 5 + int(100 // (10 * REPLAN_MARGIN)) == 14
    assert "fits 14 epochs instead of 50" in rec.lines[-1]
    assert replan(20, 5, [50.0] * 3, 1.0) == 6  # never fewer than the epoch about to run
    n = len(rec.lines)
    assert replan(20, 5, [1.0] * 3, 1000.0, most=20) == 20 and len(rec.lines) == n  # fits, asked for no more: quiet
    # faster than planned (the first epoch was slowed): longer, up to the epochs asked for, at lr 0.1 still
    assert replan(20, 5, [1.0] * 3, 1000.0) == 160
    # ... but a decay already taken is never undone: at epoch 12 of 20 the rate is 0.05 (12 * 4 // 20 = 2);
    # a longer run may only go as far as epoch 12 keeps step 2, i.e. 24 epochs
    assert t.lr_at(12, 20) == 0.05 and replan(20, 12, [1.0] * 3, 1000.0, last_lr=0.05) == 24
    assert t.lr_at(12, 24) == 0.05 and t.lr_at(12, 25) == 0.1


def test_a_replanned_schedule_still_ends_on_its_last_decay(clustered, monkeypatch):
    import vecspread.neural.trainer as trainer

    monkeypatch.setattr(trainer, "_epochs_in_budget", lambda planned, seconds, deadline, report, name: 8)
    calls = []

    def replan(planned, epoch, seconds, deadline, report, name, most, lr_of, last_lr):
        calls.append((epoch, len(seconds)))
        return min(planned, 7)  # epochs grew slower: 7 fit instead of 8

    monkeypatch.setattr(trainer, "_replan", replan)
    t = CatalyzerTransform(**{**TINY, "epochs": 8}).fit(clustered, run=RunSettings(max_minutes=60))
    assert [r["epoch"] for r in t.history_] == list(range(1, 8)) and not any(r["partial"] for r in t.history_)
    # epochs 1-6 planned over 8, epoch 7 over 7: the last decay moves earlier, the last epoch at the final rate
    assert [r["lr"] for r in t.history_] == [0.1, 0.1, 0.1, 0.1, 0.05, 0.05, 0.01]
    assert calls[0] == (6, 6) and t.get_config()["epochs_run"] == 7


def test_the_model_records_where_the_training_time_went(syn, tmp_path):
    from conftest import run_cli

    rc, _, err = run_cli("train", syn.h5, "--dout", 8, "--dint", 32, "--epochs", 2, "--bits", 16, "-o", tmp_path / "m.h5")
    assert rc == 0 and "where the time went: prepare" in err, err
    with h5py.File(tmp_path / "m.h5", "r") as f:
        totals = json.loads(f.attrs["params"])["time_totals"]
    assert set(totals) == {"prepare", "mining", "steps", "validation"} and all(v >= 0 for v in totals.values())
    assert totals["steps"] > 0
