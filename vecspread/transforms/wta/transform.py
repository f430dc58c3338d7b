"""The winner-take-all (WTA) autoencoder with lifetime sparsity (A. Makhzani, B. Frey, "Winner-Take-All
Autoencoders", NIPS 2015; summarised in seed 002, ``../shared/papers/notes-sign-alsh-and-wta.txt``),
written from that description, as an unsupervised transform whose code feeds any codec.

Network, for widths ``[d_in, *hidden, dout]``::

    encoder block i:  Linear(w_i, w_i+1) -> ReLU -> lifetime sparsity (training only)
    decoder:          Linear(dout, d_in)                    (one, linear: the notes' "linear decoding layer")
    stacked:          one linear decoder per block, Linear(w_i+1, w_i)
    output:           code(x) - centre                      (the centred code, sparsity released)

Lifetime sparsity (``vecspread.neural.sparsity``): in each mini-batch every unit keeps its
``sparsity`` % largest activations across the batch's samples and the rest are zeroed; units compete
with themselves, not with each other. At inference the constraint is released.

Decisions the notes leave open, taken here:

- **Loss**: mean squared reconstruction error, in the trainer's scaled input space (inputs divided by the
  training set's mean norm), averaged over rows and coordinates.
- **Joint or stacked**: by default every block is trained at once through one linear decoder from the
  code. ``stacked`` trains greedily, layer by layer as the notes describe: block i and its own decoder
  learn to reconstruct the output of the blocks below, which are frozen (no gradient reaches them: their
  weights are unchanged) and run with their sparsity released, as at inference. Epoch e (0-based) of a
  run planned for E epochs trains block ``min(L - 1, e * L // E)`` of the L blocks.
- **Output**: ReLU codes are non-negative, so sign bits of the raw code would be constant. The output is
  the code minus ``centre``, the mean code of the training vectors (sparsity released), recomputed after
  every epoch; ``sign`` bits are then "above the unit's mean", and PQ, OPQ or (after ``train --method pca
  --after``) the lattice code that centred vector.
- **Optimizer**: Adam, lr 1e-3, constant; batch 256 (at 5 %, 13 winners per unit and batch); PyTorch's
  default initialisation from the run's seed (the trainer's).
- **Validation and the kept epoch**: the trainer's: a held-out split, the 1-recall@10 of the sign bits of
  the centred code; the kept model is the latest epoch within one standard error of the best.
- **Reconstruction** (``reconstruct``): the decoders applied to the released code (stacked: from the top
  block down); ``sparse_batch`` applies the training-time sparsity over batches of that many rows first,
  which is what the decoders were trained on.

The split, input scale, reproducibility, budget and checkpoints are the shared trainer's
(``vecspread.neural.trainer``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from vecspread.errors import ConfigError, InputError
from vecspread.limits import MAX_NETWORK_PARAMS
from vecspread.neural.sparsity import LifetimeSparsity
from vecspread.neural.torch_util import APPLY_BATCH, as_matrix
from vecspread.neural.trainer import AdamBatches
from vecspread.transforms.neural import NeuralTransform
from vecspread.transforms.wta import SPEC


class WTAAutoencoder(nn.Module):
    """Encoder blocks [Linear -> ReLU -> LifetimeSparsity], linear decoder(s) and the ``centre`` buffer.

    ``forward`` (n, d_in) -> (n, dout): the code minus the centre (sparse in training mode, dense in eval
    mode). State-dict names: "blocks.<i>.0.weight", "decoders.<j>.weight", "centre".
    """

    def __init__(self, widths: list[int], sparsity: float, stacked: bool) -> None:
        super().__init__()
        self.widths = list(widths)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Linear(a, b), nn.ReLU(), LifetimeSparsity(sparsity)) for a, b in zip(widths, widths[1:]))
        pairs = list(zip(widths, widths[1:])) if stacked else [(widths[0], widths[-1])]
        self.decoders = nn.ModuleList(nn.Linear(b, a) for a, b in pairs)
        self.stacked = stacked
        self.register_buffer("centre", torch.zeros(widths[-1]))

    @property
    def d_out(self) -> int:
        return self.widths[-1]

    def dense(self, x: torch.Tensor, blocks: int | None = None) -> torch.Tensor:
        """The output of the first ``blocks`` blocks (all by default) with their sparsity released."""
        h = x
        for block in list(self.blocks)[: len(self.blocks) if blocks is None else blocks]:
            h = block[1](block[0](h))
        return h

    def code(self, x: torch.Tensor) -> torch.Tensor:
        """The raw (uncentred) code: every block, sparse in training mode."""
        for block in self.blocks:
            x = block(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.code(x) - self.centre

    def decode(self, h: torch.Tensor) -> torch.Tensor:
        """(n, dout) raw code -> (n, d_in) reconstruction (stacked: through every decoder, top down)."""
        for decoder in reversed(self.decoders):
            h = decoder(h)
        return h


def parameter_count(widths: list[int], stacked: bool) -> int:
    """Weights and biases of :class:`WTAAutoencoder`'s encoder and decoders."""
    enc = sum((a + 1) * b for a, b in zip(widths, widths[1:]))
    dec = sum((b + 1) * a for a, b in zip(widths, widths[1:])) if stacked else (widths[-1] + 1) * widths[0]
    return enc + dec


class WTATransform(NeuralTransform):
    """An autoencoder trained with lifetime sparsity; ``apply`` maps (n, d_in) float32 to (n, dout) float32
    centred codes (sparsity released). History records: epoch, lr, loss (reconstruction MSE), active (the
    share of non-zero code entries in training), t_mining, t_train, t_val and, at validations,
    sign_r1/r10/r100."""

    spec = SPEC

    def _check_params(self) -> None:
        if self.stacked and not self.hidden:
            raise ConfigError("--stacked trains a stack of layers one by one: give --hidden (e.g. --hidden 1024), "
                              "or drop --stacked for a single layer")
        if self.stacked and self.epochs < len(self.hidden) + 1:
            raise ConfigError(f"--stacked trains each of its {len(self.hidden) + 1} layers for at least one epoch: "
                              f"--epochs must be at least {len(self.hidden) + 1}, got {self.epochs}")

    def widths(self, d_in: int) -> list[int]:
        return [int(d_in), *(int(w) for w in self.hidden), int(self.dout)]

    def build_network(self, d_in: int) -> WTAAutoencoder:
        widths = self.widths(d_in)
        n_params = parameter_count(widths, bool(self.stacked))
        if n_params > MAX_NETWORK_PARAMS:
            raise ConfigError(f"an autoencoder {' -> '.join(map(str, widths))} has {n_params:,} weights, more than "
                              f"the {MAX_NETWORK_PARAMS:,} vecspread builds: use a smaller --dout or --hidden")
        return WTAAutoencoder(widths, float(self.sparsity), bool(self.stacked))

    def objective(self, ntr: int, nq: int, report: Any) -> "WTAObjective":
        return WTAObjective(self, ntr, report)

    def reconstruct(self, x: np.ndarray, sparse_batch: int | None = None) -> np.ndarray:
        """(n, d_in) float32 -> (n, d_in) float32 reconstructions in the input's units: the decoders on the
        released code, or with ``sparse_batch`` on the code made sparse as in training, over consecutive
        batches of that many rows."""
        x = as_matrix(np.asarray(x), "reconstruct input")
        if x.shape[1] != self.d_in_:
            raise InputError(f"{self.name} was trained on dimension {self.d_in_}, got vectors of dimension {x.shape[1]}")
        net, scale = self.net_, np.float32(self.input_scale_)
        step = int(sparse_batch) if sparse_batch else APPLY_BATCH
        out = [np.zeros((0, self.d_in_), np.float32)]
        was_training = net.training
        net.train(bool(sparse_batch))  # only the sparsity layers differ between the modes (no batch norm)
        with torch.no_grad():
            for s in range(0, len(x), step):
                xb = torch.from_numpy(np.ascontiguousarray(x[s : s + step] * scale)).to(self._device)
                out.append((net.decode(net.code(xb)) / scale).float().cpu().numpy())
        net.train(was_training)
        return np.ascontiguousarray(np.concatenate(out), dtype=np.float32)


class WTAObjective(AdamBatches):
    """Each step: a batch of training vectors, reconstructed through the sparse code (or, stacked, the block
    being trained reconstructs the frozen blocks' output). Adam at a constant rate: with ``stacked`` the
    frozen blocks get no gradient, so it leaves them as they are."""

    def __init__(self, t: WTATransform, ntr: int, report: Any = None) -> None:
        self.t, self.ntr, self.report = t, ntr, report

    def describe(self) -> str:
        t = self.t
        layers = " -> ".join(str(w) for w in [*t.hidden, t.dout])
        return (f"code {layers}, lifetime sparsity {t.sparsity:g}%, {'stacked' if t.stacked else 'joint'} "
                f"training, adam lr {t.lr:g}, batch {t.batch_size}")

    def layer_of(self, epoch: int) -> int:
        """The block a stacked run trains in 0-based ``epoch`` (of ``epochs_planned``); 0 when joint."""
        if not self.t.stacked:
            return 0
        layers = len(self.t.hidden) + 1
        return min(layers - 1, epoch * layers // max(1, self.epochs_planned or self.t.epochs))

    def begin_epoch(self, epoch: int, net: nn.Module, gen: torch.Generator) -> dict[str, torch.Tensor]:
        """A fresh random order of the training vectors, and the block this epoch trains."""
        layer = self.layer_of(epoch)
        if self.t.stacked and self.report is not None and (epoch == 0 or layer != self.layer_of(epoch - 1)):
            self.report.log(f"wta: epoch {epoch + 1} trains layer {layer + 1} of {len(self.t.hidden) + 1}")
        return {"order": torch.randperm(self.ntr, generator=gen), "layer": torch.tensor([layer])}

    def step(self, net: nn.Module, plan: dict[str, torch.Tensor], b: int,
             gen: torch.Generator) -> tuple[torch.Tensor, int, dict[str, float]]:
        idx = self.batch(plan, b)
        x = self.xs[idx]
        if self.t.stacked:
            layer = int(plan["layer"][0])
            with torch.no_grad():
                target = net.dense(x, layer)  # the frozen blocks below, as inference runs them
            h = net.blocks[layer](target)
            recon = net.decoders[layer](h)
        else:
            target, h = x, net.code(x)
            recon = net.decoders[0](h)
        loss = F.mse_loss(recon, target)
        return loss, int(idx.shape[0]), {"active": float((h.detach() > 0).float().mean())}

    def finish_epoch(self, net: nn.Module) -> None:
        """The centre: the mean released code of the training vectors."""
        with torch.no_grad():
            total = torch.zeros(net.d_out, dtype=torch.float64, device=self.device)
            for s in range(0, self.ntr, APPLY_BATCH):
                total += net.dense(self.xs[s : s + APPLY_BATCH]).double().sum(0)
            net.centre.copy_((total / max(1, self.ntr)).float())
