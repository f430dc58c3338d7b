"""The network every neural method trains: [Linear -> BN -> ReLU] x hidden_layers -> Linear (-> l2-normalise).

State-dict names read "net.0.weight", "net.1.running_mean", ... (the layers are ``MLP.net``, an
nn.Sequential): the names the model files store.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from vecspread.errors import ConfigError
from vecspread.limits import MAX_NETWORK_PARAMS
from vecspread.neural.sparsity import LifetimeSparsity

BN_ORDERS = ("bn-relu", "relu-bn")


class L2Normalize(nn.Module):
    """Rows scaled to unit l2 norm (no parameters)."""

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return F.normalize(y, p=2.0, dim=1, eps=1e-12)


class BlockNormalize(nn.Module):
    """Each block of consecutive coordinates (``dims``, summing to the row length) scaled to unit l2 norm,
    then all divided by sqrt(len(dims)): a unit row whose blocks have equal norms, the form in which a
    product of spherical lattices decodes (``vecspread.codecs.lattice.layout``). No parameters."""

    def __init__(self, dims: tuple[int, ...]) -> None:
        super().__init__()
        self.dims = tuple(int(d) for d in dims)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        parts = [F.normalize(part, p=2.0, dim=1, eps=1e-12) for part in torch.split(y, self.dims, dim=1)]
        return torch.cat(parts, dim=1) / math.sqrt(len(self.dims))


class MLP(nn.Module):
    """``self.net`` is the nn.Sequential."""

    def __init__(self, layers: list[nn.Module]) -> None:
        super().__init__()
        self.net = nn.Sequential(*layers)

    @property
    def d_out(self) -> int:
        return int(next(m for m in reversed(self.net) if isinstance(m, nn.Linear)).out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def build_mlp(d_in: int, d_out: int, dint: int, hidden_layers: int, bn_order: str = "bn-relu",
              normalize: bool = True, out_bn: bool = False, wta_sparsity: float | None = None,
              blocks: tuple[int, ...] | None = None) -> MLP:
    """[Linear -> BN -> ReLU] x hidden_layers (ReLU -> BN for "relu-bn") -> Linear(dint, d_out)
    (-> BN(d_out) with ``out_bn``) -> l2-normalise (``normalize``; with ``blocks``, of two or more block
    dimensions summing to d_out, each block on its own: :class:`BlockNormalize`).

    ``wta_sparsity`` (percent): lifetime sparsity right after each hidden ReLU, in training only
    (``vecspread.neural.sparsity``); it has no weights but moves the indices of the layers after it.

    ConfigError, before anything is allocated, when the network would hold more than
    ``limits.MAX_NETWORK_PARAMS`` weights.
    """
    n_params = mlp_parameter_count(d_in, d_out, dint, hidden_layers, out_bn)
    if n_params > MAX_NETWORK_PARAMS:
        raise ConfigError(
            f"a network {d_in} -> {dint} x {hidden_layers} -> {d_out} has {n_params:,} weights, more than the "
            f"{MAX_NETWORK_PARAMS:,} vecspread builds: use a smaller --dint or --hidden-layers")
    layers: list[nn.Module] = []
    d = d_in
    for _ in range(hidden_layers):
        layers.append(nn.Linear(d, dint))
        sparse = [LifetimeSparsity(wta_sparsity)] if wta_sparsity is not None else []
        if bn_order == "bn-relu":
            layers += [nn.BatchNorm1d(dint), nn.ReLU(), *sparse]
        else:
            layers += [nn.ReLU(), *sparse, nn.BatchNorm1d(dint)]
        d = dint
    layers.append(nn.Linear(d, d_out))
    if out_bn:
        layers.append(nn.BatchNorm1d(d_out))
    if normalize:
        layers.append(BlockNormalize(blocks) if blocks is not None and len(blocks) > 1 else L2Normalize())
    return MLP(layers)


def mlp_parameter_count(d_in: int, d_out: int, dint: int, hidden_layers: int, out_bn: bool = False) -> int:
    """Weights, biases and batch-norm affine parameters of :func:`build_mlp`'s network."""
    widths = [d_in] + [dint] * hidden_layers
    linear = sum((a + 1) * b for a, b in zip(widths, widths[1:] + [d_out]))
    return linear + 2 * dint * hidden_layers + (2 * d_out if out_bn else 0)


def init_mlp(net: nn.Module, gen: torch.Generator) -> None:
    """PyTorch's default Linear init, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases, drawn
    from ``gen`` instead of the global RNG so that runs are reproducible; batch norm: weight 1, bias 0."""
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.Linear):
                bound = 1.0 / math.sqrt(m.in_features)
                nn.init.uniform_(m.weight, -bound, bound, generator=gen)
                if m.bias is not None:
                    nn.init.uniform_(m.bias, -bound, bound, generator=gen)
            elif isinstance(m, nn.BatchNorm1d):
                m.reset_parameters()
