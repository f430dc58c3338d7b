"""Winner-take-all lifetime sparsity (Makhzani & Frey, "Winner-Take-All Autoencoders", NIPS 2015), as a layer.

In training, each hidden unit keeps only its largest activations across the samples of the mini-batch
and the rest are set to zero: a unit competes with itself over the batch, not with the other units. At
inference the constraint is released (the layer is the identity).

The rule, exactly: for a batch of ``b`` rows and a sparsity of ``k`` percent, every column keeps
``kept_per_unit(k, b) = max(1, round_half_up(k * b / 100))`` entries, its largest; among equal values the
earlier row wins (a stable sort), so the mask is deterministic and keeps exactly that many per column.
Gradients flow through the kept entries only.

Batch norm after a sparse layer learns running statistics of sparse inputs, which the dense inputs of
inference do not have: :func:`recalibrate_batch_norm` re-estimates them with the sparsity released.
"""

from __future__ import annotations

import math
from typing import Iterator

import numpy as np
import torch
import torch.nn as nn


def kept_per_unit(sparsity: float, batch: int) -> int:
    """Entries each column keeps in a batch of ``batch`` rows at ``sparsity`` percent (at least 1)."""
    return max(1, min(batch, int(math.floor(float(sparsity) * batch / 100.0 + 0.5))))


def lifetime_mask(h: torch.Tensor, sparsity: float) -> torch.Tensor:
    """(b, units) bool: True at the ``kept_per_unit(sparsity, b)`` largest entries of each column of ``h``
    (ties: the earlier row)."""
    b = h.shape[0]
    m = kept_per_unit(sparsity, b)
    order = torch.sort(h.detach(), dim=0, descending=True, stable=True).indices[:m]
    mask = torch.zeros_like(h, dtype=torch.bool)
    mask.scatter_(0, order, True)
    return mask


class LifetimeSparsity(nn.Module):
    """Training: ``h * lifetime_mask(h, sparsity)`` over the batch (rows); eval or ``released``: ``h``.

    No parameters, so a network's stored weights do not depend on it (its position in an nn.Sequential
    does move the indices of the layers after it).
    """

    def __init__(self, sparsity: float) -> None:
        super().__init__()
        self.sparsity = float(sparsity)
        self.released = False

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        if not self.training or self.released or h.shape[0] == 0:
            return h
        return h * lifetime_mask(h, self.sparsity)

    def extra_repr(self) -> str:
        return f"sparsity={self.sparsity:g}%"


def sparsity_layers(net: nn.Module) -> Iterator[LifetimeSparsity]:
    return (m for m in net.modules() if isinstance(m, LifetimeSparsity))


@torch.no_grad()
def recalibrate_batch_norm(net: nn.Module, xs: np.ndarray | torch.Tensor, device: torch.device,
                           batch: int = 4096) -> None:
    """Re-estimate every batch norm's running mean and variance of ``net`` on (n, d_in) float32 ``xs`` with
    lifetime sparsity released, as inference sees the layers: batch norms in training mode (cumulative
    average over batches of ``batch`` rows), everything else as it is. Nothing to do (and nothing done)
    for a network without lifetime sparsity. Leaves ``net`` in eval mode."""
    bns = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    sparse = list(sparsity_layers(net))
    net.eval()
    if not bns or not sparse or len(xs) == 0:
        return
    momenta = [bn.momentum for bn in bns]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative moving average: every batch counts the same
        bn.train()
    for s in sparse:
        s.released = True
    try:
        # the last batch is merged into the one before so that no batch norm sees a batch of one row
        starts = list(range(0, len(xs), batch))
        if len(starts) > 1 and len(xs) - starts[-1] < 2:
            starts.pop()
        for i, start in enumerate(starts):
            end = starts[i + 1] if i + 1 < len(starts) else len(xs)
            if end - start >= 2:
                rows = xs[start:end]
                net((rows if isinstance(rows, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(rows))).to(device))
    finally:
        for bn, momentum in zip(bns, momenta):
            bn.momentum = momentum
        for s in sparse:
            s.released = False
        net.eval()
