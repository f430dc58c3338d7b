"""The network every neural method trains: [Linear -> BN -> ReLU] x hidden_layers -> Linear (-> l2-normalise).

State-dict names read "net.0.weight", "net.1.running_mean", ... (the layers are ``MLP.net``, an
nn.Sequential): the names the model files store.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from vecspread.errors import ConfigError
from vecspread.limits import MAX_NETWORK_PARAMS
from vecspread.linalg import random_rotation
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
    """``self.net`` is the nn.Sequential. With ``linear_path`` (an nn.Linear(d_in, d_out), stored as
    ``self.linear_path``: state names "linear_path.weight", "linear_path.bias"), its output is added to
    that of the network's last Linear (or output BN), before the final normalisation."""

    def __init__(self, layers: list[nn.Module], linear_path: nn.Linear | None = None) -> None:
        super().__init__()
        self.net = nn.Sequential(*layers)
        self.linear_path = linear_path
        # the layers after the last Linear and its output BN: the normalisation the linear path goes under
        last = max(i for i, m in enumerate(layers) if isinstance(m, nn.Linear))
        self._body = last + 1 + int(last + 1 < len(layers) and isinstance(layers[last + 1], nn.BatchNorm1d))

    @property
    def d_out(self) -> int:
        return int(self.last_linear.out_features)

    @property
    def last_linear(self) -> nn.Linear:
        """The network's output Linear(dint, d_out)."""
        return next(m for m in reversed(self.net) if isinstance(m, nn.Linear))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.linear_path is None:
            return self.net(x)
        return self.net[self._body :](self.net[: self._body](x) + self.linear_path(x))


def build_mlp(d_in: int, d_out: int, dint: int, hidden_layers: int, bn_order: str = "bn-relu",
              normalize: bool = True, out_bn: bool = False, wta_sparsity: float | None = None,
              blocks: tuple[int, ...] | None = None, linear_path: bool = False) -> MLP:
    """[Linear -> BN -> ReLU] x hidden_layers (ReLU -> BN for "relu-bn") -> Linear(dint, d_out)
    (-> BN(d_out) with ``out_bn``) -> l2-normalise (``normalize``; with ``blocks``, of two or more block
    dimensions summing to d_out, each block on its own: :class:`BlockNormalize`). ``linear_path``: plus a
    Linear(d_in, d_out) from the input, added before the normalisation (:class:`MLP`;
    :func:`init_pca_path` starts it at a PCA projection).

    ``wta_sparsity`` (percent): lifetime sparsity right after each hidden ReLU, in training only
    (``vecspread.neural.sparsity``); it has no weights but moves the indices of the layers after it.

    ConfigError, before anything is allocated, when the network would hold more than
    ``limits.MAX_NETWORK_PARAMS`` weights.
    """
    n_params = mlp_parameter_count(d_in, d_out, dint, hidden_layers, out_bn)
    n_params += (d_in + 1) * d_out if linear_path else 0
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
    return MLP(layers, nn.Linear(d_in, d_out) if linear_path else None)


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


def init_pca_path(net: MLP, xs: np.ndarray, seed: int) -> None:
    """Start ``net`` (built with ``linear_path``) at a PCA map: its linear path projects the centred
    (n, d_in) float32 training inputs ``xs`` on their d_out leading principal directions, mixed by a Haar
    random rotation (seeded by ``seed``) so that the variance is spread over the output's blocks, scaled to
    unit mean variance per output; the network's output Linear starts at zero, so before any step the
    output is the normalised rotated PCA projection. ConfigError when d_out > d_in (no such projection)."""
    path = net.linear_path
    if path is None:
        raise ValueError("init_pca_path needs a network built with linear_path=True")
    d_out, d_in = path.weight.shape
    if d_out > d_in:
        raise ConfigError(f"--pca-path projects on d_out principal directions of the input: --dout {d_out} is more "
                          f"than the input's {d_in} dimensions")
    x = np.asarray(xs, dtype=np.float64)
    mean = x.mean(axis=0)
    cov = (x - mean).T @ (x - mean) / max(len(x) - 1, 1)
    eigvals, eigvecs = np.linalg.eigh(cov)
    top = eigvecs[:, ::-1][:, :d_out]  # (d_in, d_out), leading directions first
    scale = 1.0 / math.sqrt(max(float(eigvals[::-1][:d_out].mean()), 1e-30))
    rotation = random_rotation(d_out, np.random.default_rng(seed))  # (d_out, d_out)
    weight = scale * (rotation @ top.T)  # (d_out, d_in)
    with torch.no_grad():
        path.weight.copy_(torch.from_numpy(weight.astype(np.float32)))
        path.bias.copy_(torch.from_numpy((-weight @ mean).astype(np.float32)))
        net.last_linear.weight.zero_()
        net.last_linear.bias.zero_()
