"""Lifetime sparsity: the mask against a numpy statement of the rule, released at inference, batch-norm
statistics re-estimated without it, and the catalyzer and NPhash layer option."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn

from vecspread.neural.mlp import build_mlp
from vecspread.neural.sparsity import LifetimeSparsity, kept_per_unit, lifetime_mask, recalibrate_batch_norm


def reference_mask(h: np.ndarray, sparsity: float) -> np.ndarray:
    """Each column keeps its m = max(1, round-half-up(k b / 100)) largest entries; equal values: the earlier row."""
    b = h.shape[0]
    m = max(1, min(b, int(np.floor(sparsity * b / 100 + 0.5))))
    mask = np.zeros(h.shape, dtype=bool)
    for j in range(h.shape[1]):
        order = sorted(range(b), key=lambda i: (-h[i, j], i))
        mask[order[:m], j] = True
    return mask


@pytest.mark.parametrize("b,sparsity", [(256, 5), (100, 5), (10, 5), (7, 50), (33, 12.5), (5, 100), (1, 5)])
def test_mask_is_the_rule_exactly_ties_included(b, sparsity):
    rng = np.random.default_rng(b)
    # few distinct values, so that ties cross the cut in most columns; ReLU-like zeros too
    h = np.maximum(rng.integers(-2, 4, size=(b, 40)), 0).astype(np.float32)
    got = lifetime_mask(torch.from_numpy(h), sparsity).numpy()
    np.testing.assert_array_equal(got, reference_mask(h, sparsity))
    assert (got.sum(0) == kept_per_unit(sparsity, b)).all()


def test_kept_per_unit():
    assert kept_per_unit(5, 256) == 13  # 12.8 rounds up
    assert kept_per_unit(5, 100) == 5
    assert kept_per_unit(5, 10) == 1  # 0.5 rounds half up
    assert kept_per_unit(1, 10) == 1  # never none
    assert kept_per_unit(100, 9) == 9


def test_layer_masks_in_training_and_is_released_at_inference():
    layer = LifetimeSparsity(10)
    h = torch.rand(50, 8, requires_grad=True)
    layer.train()
    out = layer(h)
    mask = lifetime_mask(h, 10)
    assert torch.equal(out, h * mask)
    out.sum().backward()
    assert torch.equal(h.grad, mask.float())  # gradients reach the kept entries only
    layer.eval()
    assert torch.equal(layer(h), h)


def test_mlp_option_changes_training_only():
    torch.manual_seed(0)
    sparse = build_mlp(12, 6, 32, 2, wta_sparsity=5)
    dense = build_mlp(12, 6, 32, 2)
    # the same weights: layers without parameters do not count, so map them in order
    for (_, a), (_, b) in zip(sparse.state_dict().items(), dense.state_dict().items()):
        b.copy_(a)
    x = torch.randn(64, 12)
    sparse.eval(), dense.eval()
    assert torch.equal(sparse(x), dense(x))
    sparse.train(), dense.train()
    assert not torch.allclose(sparse(x), dense(x))
    assert sum(isinstance(m, LifetimeSparsity) for m in sparse.modules()) == 2


@pytest.mark.parametrize("bn_order", ["bn-relu", "relu-bn"])
def test_recalibrated_statistics_are_those_of_the_dense_network(bn_order):
    torch.manual_seed(1)
    net = build_mlp(10, 4, 16, 2, bn_order=bn_order, wta_sparsity=5)
    x = torch.randn(300, 10)
    net.train()
    for _ in range(3):  # running statistics of sparse activations
        net(x)
    recalibrate_batch_norm(net, x.numpy(), torch.device("cpu"), batch=1000)  # one batch: exact moments
    assert not net.training
    # the reference: the dense network (sparsity layers skipped), each batch norm normalising with the
    # moments of the batch it sees (as update_bn-style re-estimation runs it), which it must have stored
    h = x
    with torch.no_grad():
        for m in net.net:
            if isinstance(m, nn.BatchNorm1d):
                np.testing.assert_allclose(m.running_mean.numpy(), h.mean(0).numpy(), rtol=1e-5, atol=1e-6)
                np.testing.assert_allclose(m.running_var.numpy(), h.var(0, unbiased=True).numpy(), rtol=1e-4,
                                           atol=1e-6)
                h = nn.functional.batch_norm(h, None, None, m.weight, m.bias, training=True, eps=m.eps)
            elif not isinstance(m, LifetimeSparsity):
                h = m(h)
    assert all(not s.released for s in net.modules() if isinstance(s, LifetimeSparsity))


def test_recalibration_leaves_a_network_without_sparsity_alone():
    torch.manual_seed(2)
    net = build_mlp(10, 4, 16, 2)
    net.train()
    net(torch.randn(64, 10))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    recalibrate_batch_norm(net, np.random.default_rng(0).standard_normal((100, 10)).astype(np.float32),
                           torch.device("cpu"))
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_catalyzer_and_nphash_train_with_the_option():
    from vecspread.transforms.catalyzer.transform import CatalyzerTransform
    from vecspread.transforms.nphash.transform import NPHashTransform

    rng = np.random.default_rng(3)
    x = (rng.standard_normal((400, 16)) @ rng.standard_normal((16, 16))).astype(np.float32)
    for t in (CatalyzerTransform(dout=8, dint=16, epochs=2, bits=16, val_size=(0, 10), kneg=5, wta_sparsity=10),
              NPHashTransform(bits=16, dint=16, epochs=2, k=5, proxies=60, batch_size=64, val_size=(60, 10),
                              wta_sparsity=10)):
        t.fit(x)
        assert sum(isinstance(m, LifetimeSparsity) for m in t.net_.modules()) == 2
        y = t.apply(x)
        assert np.isfinite(y).all()
        np.testing.assert_array_equal(t.apply(x[:50]), y[:50])  # inference: no batch dependence
        again = type(t).from_state(t.get_config(), t.get_weights())
        np.testing.assert_array_equal(again.apply(x), y)
