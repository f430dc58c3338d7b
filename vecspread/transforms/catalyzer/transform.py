"""The catalyzer: a small MLP trained to spread vectors uniformly on the unit sphere while keeping
their neighbours (Sablayrolles, Douze, Schmid, Jégou, "Spreading vectors for similarity search",
ICLR 2019, Sections 3-4 and Appendices A-B). Written from the paper's formulas.

Network (``hidden_layers`` = 2, ``bn_order`` = "bn-relu", the paper's 3-layer perceptron)::

    Linear(d_in, dint) -> BN -> ReLU -> Linear(dint, dint) -> BN -> ReLU -> Linear(dint, dout) -> l2-normalise

"relu-bn" puts each ReLU before its BN. Loss per batch (eq. 3 and 4 of the paper)::

    mean_i relu(||f(x_i) - f(x_i+)|| - ||f(x_i) - f(x_i-)||)  +  lam * KoLeo
    KoLeo = -mean_i log(min_{j != i} ||f(x_i) - f(x_j)|| + 1e-8)            (over the batch's anchors)

Decisions the paper leaves open, taken here (each one also noted where it is implemented):

- **Positives**: the ``kpos`` exact input-space neighbours of each training vector (faiss, once), the
  vector itself excluded *by id* (an exact duplicate of it stays a valid positive); one of them is drawn
  uniformly at random for every vector at the start of each epoch. ``self_positive`` counts the point
  itself instead: it and its kpos - 1 nearest others, which is what a k-NN of the training set in
  itself gives (the authors' code does that); see RESULTS.md for what each choice measured.
- **Negatives**: at the start of each epoch, f(x) of every training vector (eval mode); the negative of
  x_i is the ``kneg``-th nearest neighbour of f(x_i) among those outputs, rank counted with x_i itself
  excluded (so kneg = 1 is the nearest *other* output).
- **One forward pass per step** on the concatenated anchors, positives and negatives: batch-norm
  statistics are taken over those 3 x batch_size rows (``bn_stats`` = "joint"). "per-role" runs three
  passes, so each role gets its own statistics (as the authors' code does). The last, incomplete batch of an epoch is kept
  when it has at least 2 rows (batch-norm and KoLeo need 2) and dropped otherwise.
- **KoLeo guard**: the diagonal is set to +inf before the min, and 1e-8 is added inside the log, so
  exact duplicates give a large but finite loss (the gradient of ||.|| at 0 is taken as 0).
- **End-to-end mode** (``quantizer_train="lattice"``): positives and negatives go through the nearest
  point of the spherical lattice (LatticeCodec.quantize, unit norm) with a straight-through gradient,
  y + (q(y) - y).detach(); anchors stay unquantized (the search is asymmetric: queries are not quantized).
- **lam** defaults to the paper's Appendix A table (dout 16: 0.05, 24: 0.02, 32: 0.01, 40: 0.005); for
  another dout the nearest tabulated dout is used (ties go to the smaller dout, i.e. the larger lam).
- **epochs** defaults to 8 so that a CPU run finishes; the paper trains much longer (160 epochs in the
  authors' schedule; Section 5.2's text says 300 with lr decays at epochs 80 and 120). The piecewise
  constant ``lr_schedule`` (0.1, 0.1, 0.05, 0.01) is spread evenly over the epochs: epoch e (0-based)
  uses ``lr_schedule[floor(e * len(lr_schedule) / epochs)]``, which for 160 epochs reproduces the
  decays at 80 and 120; ``lr`` rescales the schedule (lr / lr_schedule[0], 1 by default). Plain SGD
  with momentum, no weight decay (the paper mentions none).
- **Validation split**: by default min(1000, n // 100) held-out queries are searched in the *training*
  vectors (their exact nearest neighbours there are the ground truth), so that all the rest trains (the
  earlier default held out a 10k database too). On debsift200k this and the kept-epoch rule took the test
  1-recall@10 of dout 24 + lattice from 0.754 (3 seeds) to 0.767 +- 0.011 (5 seeds; benchmarks/RESULTS.md).
  Cost: one forward pass and one encode of the training set per validation, about 2 s per epoch for 99k
  vectors, except where faiss's lattice encode is slow (dout 16 at 64 bits, r2 512: about 20 s);
  ``val_size=(10000, 1000)``, a held-out 10k database, bounds it. A 10k sample of the training vectors as
  the database was also measured; it changed the kept epoch in 2 of 10 runs (RESULTS.md).
- **Searches** (positives, negatives) run with faiss on the CPU; when the network trains on a GPU, the
  exact ones run there with torch instead (``device_knn``), and ``mining="auto"`` is exact. The validation's
  ground truth is faiss on the CPU. ``mining="ivf"`` makes the positives' and negatives' searches approximate:
  a faiss IVF-Flat index over the searched vectors (round(4 sqrt(n)) lists, k-means on at most 64 vectors
  per list drawn with the run's seed, ``nprobe`` lists visited), rebuilt for each search, as the
  authors' code does on CPU. ``mining="auto"`` (the default) is IVF from ``AUTO_IVF_MIN`` (50,000) training
  vectors on the CPU, exact below (where exact costs less than the steps) and on a GPU; the model records
  which one ran.
  Exact is the reference in tests.
- **Lifetime sparsity** (``wta_sparsity``, seed 002; ``vecspread.neural.sparsity``): in training each hidden
  unit keeps its largest activations over the step's rows, right after its ReLU; released at inference.
  After every epoch the batch-norm running statistics are re-estimated on the training vectors with it
  released, since the layers after a sparse one would otherwise normalise the dense activations of
  inference with statistics of sparse ones. Off by default; measured in benchmarks/RESULTS.md.

- **Product lattices** (``bits`` past 64, or ``blocks``; ``vecspread.codecs.lattice.layout``): the codec
  decodes every block to a unit direction / sqrt(blocks), so by default (``block_norm``) the network's
  last layer normalises each block of the output that way (``BlockNormalize``) instead of the whole
  output, and validation and end-to-end training use the product codec. ``koleo="per-block"`` takes
  the mean of the blocks' KoLeo instead of KoLeo over the whole output. Measured in RESULTS.md.

The split, input scale, reproducibility, validation, budget and checkpoints are the shared trainer's
(``vecspread.neural.trainer``). The catalyzer validates the sign bits and the lattice at ``bits`` (or
``r2``); ``val_codec`` picks whose 1-recall@10 the kept-epoch rule reads.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import faiss
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from vecspread.errors import ConfigError, InputError
from vecspread.neural.mlp import MLP, build_mlp, init_pca_path
from vecspread.neural.torch_util import forward_batched
from vecspread.neural.trainer import Objective
from vecspread.transforms.neural import NeuralTransform
from vecspread.transforms.catalyzer import AUTO_IVF_MIN, LAMBDA_BY_DOUT, SPEC

#: added to the nearest-neighbour distance inside KoLeo's log so that duplicates stay finite
KOLEO_EPS = 1e-8


class CatalyzerTransform(NeuralTransform):
    """MLP + l2-normalisation trained with a triplet loss and the KoLeo entropy regulariser.

    ``fit`` takes the learn set (n, d_in) float32; ``apply`` maps (n, d_in) float32 to (n, dout) float32
    unit vectors. History records: epoch, lr, loss, triplet, koleo, violated, t_mining, t_train, t_val
    and, at validations, sign_r1/r10/r100 and lattice_r1/r10/r100. Hyper-parameters: see the spec
    (``vecspread.transforms.catalyzer``) and the module docstring.
    """

    spec = SPEC
    default_validation = "training-set"

    def _check_params(self) -> None:
        if self.self_positive and self.kpos < 2:
            raise ConfigError("--self-positive needs --kpos 2 or more (the point itself plus at least one neighbour)")

    def build_network(self, d_in: int) -> MLP:
        return build_mlp(d_in, self.dout, self.dint, self.hidden_layers, self.bn_order, wta_sparsity=self.wta_sparsity,
                         blocks=self.output_blocks() if self.block_norm else None, linear_path=self.pca_path)

    def output_blocks(self) -> tuple[int, ...] | None:
        """The dimensions of the product lattice's blocks (``--bits`` past 64 or ``--blocks``) when the model
        is made for the lattice (``--val-codec lattice`` or end-to-end), else None (also for one block, and
        for a layout that cannot be stored: the objective refuses it)."""
        if self.val_codec != "lattice" and self.quantizer_train != "lattice":
            return None
        from vecspread.codecs.lattice.layout import layout_for

        try:
            layout = layout_for(self.dout, None if self.r2 is not None else self.bits, self.r2, self.blocks)
        except ConfigError:
            return None
        return tuple(b.dim for b in layout) if len(layout) > 1 else None

    def codec_name(self) -> str | None:
        """The codec it validated with (``--val-codec``): stored in the model, so ``encode`` needs no ``--codec``."""
        return self.val_codec

    def codec_defaults(self) -> dict[str, Any]:
        """The lattice of its validation (``--bits`` or ``--r2``) for the stored lattice codec."""
        if self.val_codec != "lattice":
            return {}
        where = {"r2": self.r2} if self.r2 is not None else {"bits": self.bits}
        return {**where, **({"blocks": self.blocks} if self.blocks is not None else {})}

    def resolved(self) -> dict[str, Any]:
        """``lam`` as used, and ``mining`` once a run has resolved "auto"."""
        mining = getattr(self, "mining_", None)
        return {"lam": self.effective_lam(), **({"mining": mining} if mining else {})}

    def effective_mining(self, ntr: int) -> str:
        """``mining``, with "auto" resolved for ``ntr`` training vectors: exact on a GPU (it searches there)
        or below ``AUTO_IVF_MIN``, ivf otherwise."""
        if self.mining != "auto":
            return str(self.mining)
        on_gpu = getattr(self, "_device", None) is not None and self._device.type != "cpu"
        return "ivf" if ntr >= AUTO_IVF_MIN and not on_gpu else "exact"

    def effective_lam(self) -> float:
        """``lam``, or the paper's value for the nearest tabulated dout when ``lam`` is None."""
        if self.lam is not None:
            return float(self.lam)
        nearest = min(LAMBDA_BY_DOUT, key=lambda t: (abs(t - int(self.dout)), t))
        return LAMBDA_BY_DOUT[nearest]

    def lr_at(self, epoch: int, epochs: int | None = None) -> float:
        """Learning rate of 0-based ``epoch``: ``lr_schedule[floor(epoch * len / epochs)]``, rescaled
        by ``lr / lr_schedule[0]`` (1 with the defaults) so that ``lr`` moves the whole schedule.
        ``epochs``: the length the schedule is spread over (default ``self.epochs``; fewer when a time
        budget compresses it). A run of 2 or more epochs ends at the schedule's final rate."""
        sched, n = list(self.lr_schedule), int(epochs or self.epochs)
        # a run of 2 or more epochs but fewer than the schedule's steps still ends on its last decay
        # (for n >= len(sched) the formula already gives the last epoch the final rate)
        last = 1 < n < len(sched) and epoch >= n - 1
        step = len(sched) - 1 if last else min(len(sched) - 1, (epoch * len(sched)) // n)
        value = float(sched[step])
        if float(self.lr) == float(sched[0]):
            return value  # the common case, exactly the tabulated value
        return value * float(self.lr) / float(sched[0])

    def objective(self, ntr: int, nq: int, report: Any) -> "CatalyzerObjective":
        self.mining_ = self.effective_mining(ntr)
        if ntr < max(self.kpos, self.kneg) + 2:
            raise InputError(
                f"catalyzer needs more than max(kpos, kneg) + 1 = {max(self.kpos, self.kneg) + 1} training "
                f"vectors; got {ntr} after holding out the validation vectors"
            )
        # the lattice is built before any training so that an impossible bits/dout fails at once; it is
        # optional only when nothing depends on it (sign-selected validation, no end-to-end training)
        train_lattice = self.quantizer_train == "lattice"
        try:
            lattice = self._lattice_codec().fit(np.eye(1, self.dout, dtype=np.float32))
        except ConfigError as e:
            if train_lattice or (nq > 0 and self.val_codec == "lattice"):
                raise
            lattice = None
            report.log(f"no lattice validation: {e}")
        if lattice is not None and report is not None and self.val_codec == "lattice":
            for line in lattice.fit_notes():
                report.log(line)
        return CatalyzerObjective(self, ntr, lattice.quantize if train_lattice else None, lattice is not None, report)

    def _lattice_codec(self) -> Any:
        """An unfitted LatticeCodec at ``r2`` or ``bits``."""
        from vecspread.codecs.lattice.codec import LatticeCodec

        if self.r2 is not None:
            return LatticeCodec(r2=self.r2, blocks=self.blocks)
        return LatticeCodec(bits=self.bits, blocks=self.blocks)


class CatalyzerObjective(Objective):
    """Triplets (anchor, a drawn input-space positive, the mined output-space negative) + lam * KoLeo."""

    def __init__(self, t: CatalyzerTransform, ntr: int, quantize: Callable[[np.ndarray], np.ndarray] | None,
                 validate_lattice: bool, report: Any = None) -> None:
        self.t, self.ntr, self.quantize, self.report = t, ntr, quantize, report
        self.lam = t.effective_lam()
        self.kept_codec = t.val_codec
        self._validate_lattice = validate_lattice
        blocks = t.output_blocks() if t.koleo == "per-block" else None
        self.koleo = koleo_loss if blocks is None else lambda y: torch.stack(
            [koleo_loss(part) for part in torch.split(y, blocks, dim=1)]).mean()

    def describe(self) -> str:
        t = self.t
        return f"dout {t.dout}, dint {t.dint}, lam {self.lam:g}, {t.mining_} mining" + (
            f" (nprobe {t.nprobe})" if t.mining_ == "ivf" else "") + (
            f", wta sparsity {t.wta_sparsity:g}%" if t.wta_sparsity is not None else "") + (
            f", output blocks {'+'.join(map(str, blocks))} ({'normalised each' if t.block_norm else 'one sphere'}"
            f", {t.koleo} KoLeo)" if (blocks := t.output_blocks()) else "")

    def validation_codecs(self) -> dict[str, Any]:
        return {"lattice": self.t._lattice_codec} if self._validate_lattice else {}

    def init_network(self, net: nn.Module, xs: np.ndarray) -> None:
        """With ``--pca-path``: the linear path at the rotated PCA projection of ``xs``, the MLP's output at 0."""
        if self.t.pca_path:
            init_pca_path(net, xs, int(self.t.seed))

    def optimizer(self, net: nn.Module) -> torch.optim.Optimizer:
        """Plain SGD with momentum, no weight decay (the paper mentions none)."""
        return torch.optim.SGD(net.parameters(), lr=self.t.lr_schedule[0], momentum=self.t.momentum)

    def n_steps(self, ntr: int) -> int:
        return n_batches(ntr, self.t.batch_size)

    def lr_at(self, epoch: int, epochs: int | None = None) -> float:
        return self.t.lr_at(epoch, epochs)

    def prepare(self, x_train: np.ndarray, xs: np.ndarray, device: torch.device) -> str:
        self.xs, self.device = xs, device
        self.pos_knn = torch.from_numpy(positive_lists(xs, self.t.kpos, self.t.self_positive, self.report,
                                                       self.knn_search()))
        self.x_dev = torch.from_numpy(xs).to(device)
        return f"positives ({self.t.kpos}-NN)"

    def begin_epoch(self, epoch: int, net: nn.Module, gen: torch.Generator) -> dict[str, torch.Tensor]:
        """Negatives mined on the current outputs, one positive drawn per vector, the batch order."""
        t, ntr = self.t, self.ntr
        y_all = forward_batched(net, self.xs, t.dout, self.device)
        neg = exclude_self(self.knn_search()(y_all, y_all, t.kneg + 1, self.report,
                                             f"epoch {epoch + 1}/{t.epochs}: mining negatives"), t.kneg)[:, t.kneg - 1]
        draw = torch.randint(t.kpos, (ntr,), generator=gen)
        pos = self.pos_knn[torch.arange(ntr), draw]
        order = torch.randperm(ntr, generator=gen)
        return {"order": order, "pos": pos, "neg": torch.from_numpy(neg)}

    def knn_search(self) -> Callable[..., np.ndarray]:
        """The k-NN search of the mining: exact, or IVF with the run's nprobe and seed."""
        if self.t.mining_ == "exact":  # resolved for this run by CatalyzerTransform.objective
            if self.device.type != "cpu":  # the training GPU: exact and fast there
                return lambda xq, xb, k, progress=None, what="": device_knn(xq, xb, k, self.device, progress, what)
            return _knn
        return lambda xq, xb, k, progress=None, what="": ivf_knn(xq, xb, k, self.t.nprobe, int(self.t.seed),
                                                                 progress, what)

    def step(self, net: nn.Module, plan: dict[str, torch.Tensor], b: int,
             gen: torch.Generator) -> tuple[torch.Tensor, int, dict[str, float]]:
        bs_max, x = self.t.batch_size, self.x_dev
        idx = plan["order"][b * bs_max : (b + 1) * bs_max].to(self.device)
        pos, neg = plan["pos"].to(self.device)[idx], plan["neg"].to(self.device)[idx]
        bs = idx.shape[0]
        if self.t.bn_stats == "per-role":
            ya = net(x[idx])
            ypn = torch.cat([net(x[pos]), net(x[neg])])
        else:
            y = net(torch.cat([x[idx], x[pos], x[neg]]))
            ya, ypn = y[:bs], y[bs:]
        if self.quantize is not None:
            ypn = straight_through(ypn, self.quantize)
        l_rank, violated = triplet_loss(ya, ypn[:bs], ypn[bs:], return_violations=True)
        l_koleo = self.koleo(ya)
        return l_rank + self.lam * l_koleo, bs, {"triplet": l_rank.item(), "koleo": l_koleo.item(),
                                                 "violated": violated.item()}


# ====================================================================== losses


def triplet_loss(
    ya: torch.Tensor, yp: torch.Tensor, yn: torch.Tensor, return_violations: bool = False
) -> Any:
    """mean_i relu(||ya_i - yp_i|| - ||ya_i - yn_i||) over (b, d) float tensors (no margin, eq. 3).

    With ``return_violations``, also the share of triplets with a positive loss (no gradient).
    """
    d_pos = torch.linalg.vector_norm(ya - yp, dim=1)
    d_neg = torch.linalg.vector_norm(ya - yn, dim=1)
    diff = d_pos - d_neg
    loss = F.relu(diff).mean()
    if return_violations:
        return loss, (diff.detach() > 0).float().mean()
    return loss


def koleo_loss(y: torch.Tensor, eps: float = KOLEO_EPS) -> torch.Tensor:
    """KoLeo = -mean_i log(min_{j != i} ||y_i - y_j|| + eps) over the rows of (b, d) ``y`` (eq. 2).

    The nearest other row is found without gradient (diagonal set to +inf, so i never picks itself),
    then its distance is recomputed with gradient: the same value and gradient as a min, without the
    NaN that a pairwise-distance backward gives at zero distance. ``eps`` keeps duplicates finite.
    """
    with torch.no_grad():
        dist = torch.cdist(y, y)
        dist.fill_diagonal_(math.inf)
        nn_idx = dist.argmin(dim=1)
    rho = torch.linalg.vector_norm(y - y[nn_idx], dim=1)
    return -torch.log(rho + eps).mean()


def straight_through(y: torch.Tensor, quantize: Callable[[np.ndarray], np.ndarray]) -> torch.Tensor:
    """Forward: ``quantize`` applied to (b, d) ``y`` (numpy (b, d) float32 -> (b, d) float32);
    backward: the identity (straight-through estimator, y + (q(y) - y).detach())."""
    q = quantize(np.ascontiguousarray(y.detach().cpu().numpy(), dtype=np.float32))
    q = torch.from_numpy(np.ascontiguousarray(q, dtype=np.float32)).to(device=y.device, dtype=y.dtype)
    return y + (q - y).detach()


# ====================================================================== mining


def exclude_self(I: np.ndarray, k: int) -> np.ndarray:
    """(n, k+1) int64 neighbour ids of points 0..n-1 among themselves -> (n, k) without each point's id.

    Where the point is not in its own list (exact duplicates filled it), the last column is dropped.
    """
    n = I.shape[0]
    is_self = I == np.arange(n)[:, None]
    missing = ~is_self.any(axis=1)
    is_self[missing, -1] = True
    return np.ascontiguousarray(I[~is_self].reshape(n, I.shape[1] - 1)[:, :k])


def positive_lists(x: np.ndarray, kpos: int, self_positive: bool, progress: Any = None,
                   knn: Callable[..., np.ndarray] | None = None) -> np.ndarray:
    """(n, kpos) int64 positive candidates of the (n, d) float32 training vectors ``x``.

    Without ``self_positive``: the kpos nearest *other* vectors (the point excluded by id). With it:
    the point itself, then its kpos - 1 nearest others -- what a k-NN of the training set in itself
    gives when there are no exact duplicates.
    """
    what = f"positives: {kpos}-NN of the training set"
    knn = knn or _knn
    if not self_positive:
        return exclude_self(knn(x, x, kpos + 1, progress, what), kpos)
    others = exclude_self(knn(x, x, kpos, progress, what), kpos - 1)
    return np.ascontiguousarray(np.hstack([np.arange(x.shape[0], dtype=others.dtype)[:, None], others]))


def n_batches(n: int, batch_size: int) -> int:
    """Batches per epoch: full batches, plus the remainder when it has at least 2 rows."""
    full, rest = divmod(n, batch_size)
    return full + (1 if rest >= 2 else 0)


#: queries per faiss call of :func:`_knn` (a multiple of faiss's own BLAS query block, 4096, so that the
#: chunks compute exactly what one call would)
KNN_CHUNK = 4 * 4096


def _knn(xq: np.ndarray, xb: np.ndarray, k: int, progress: Any = None, what: str = "") -> np.ndarray:
    """Exact L2 k-NN ids (nq, k) int64 of float32 ``xq`` in ``xb`` (faiss, CPU), in chunks of queries so
    that ``progress`` (start/advance/finish, optional) shows the work; a remainder smaller than faiss's
    block joins the last chunk."""
    xq = np.ascontiguousarray(xq, dtype=np.float32)
    xb = np.ascontiguousarray(xb, dtype=np.float32)
    nq = len(xq)
    bounds = list(range(0, nq, KNN_CHUNK)) + [nq]
    if len(bounds) > 2 and bounds[-1] - bounds[-2] < 4096:
        del bounds[-2]
    if progress is not None:
        progress.start(nq, what or f"{k}-NN")
    parts = []
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        parts.append(faiss.knn(xq[lo:hi], xb, k)[1])
        if progress is not None:
            progress.advance(hi - lo)
    if progress is not None:
        progress.finish()
    return np.concatenate(parts) if len(parts) > 1 else parts[0]


#: bytes of one query chunk's distance matrix in :func:`device_knn`
DEVICE_KNN_BYTES = 1 << 30


def device_knn(xq: np.ndarray, xb: np.ndarray, k: int, device: Any, progress: Any = None,
               what: str = "") -> np.ndarray:
    """Exact L2 k-NN ids (nq, k) int64 of float32 ``xq`` in ``xb``, computed by torch on ``device`` (the
    training GPU; any torch device works): ||q||^2 - 2 q.b + ||b||^2 over chunks of queries whose distance
    matrix fits ``DEVICE_KNN_BYTES``, then topk. Ties may be ordered otherwise than faiss orders them."""
    xq = np.ascontiguousarray(xq, dtype=np.float32)
    xb_t = torch.from_numpy(np.ascontiguousarray(xb, dtype=np.float32)).to(device)
    b_norms = (xb_t * xb_t).sum(1)
    chunk = max(1, min(len(xq), DEVICE_KNN_BYTES // (4 * max(1, len(xb)))))
    if progress is not None:
        progress.start(len(xq), (what or f"{k}-NN") + f" (exact, on {device})")
    parts = []
    with torch.no_grad():
        for lo in range(0, len(xq), chunk):
            q = torch.from_numpy(xq[lo : lo + chunk]).to(device)
            dist = (q * q).sum(1, keepdim=True) - 2 * q @ xb_t.T + b_norms[None, :]
            parts.append(torch.topk(dist, k, dim=1, largest=False, sorted=True).indices.cpu().numpy())
            if progress is not None:
                progress.advance(len(q))
    if progress is not None:
        progress.finish()
    return np.ascontiguousarray(np.concatenate(parts) if parts else np.zeros((0, k), np.int64), dtype=np.int64)


#: k-means training vectors per IVF list (faiss warns below 39)
IVF_TRAIN_PER_LIST = 64


def ivf_knn(xq: np.ndarray, xb: np.ndarray, k: int, nprobe: int, seed: int, progress: Any = None,
            what: str = "") -> np.ndarray:
    """Approximate L2 k-NN ids (nq, k) int64 of float32 ``xq`` in ``xb``: faiss IVF-Flat with round(4 sqrt(n))
    lists (k-means on at most 64 vectors per list, drawn with ``seed``), ``nprobe`` lists visited. Slots
    it cannot fill (fewer than k vectors in the lists visited) are filled with the exact search's ids."""
    xq = np.ascontiguousarray(xq, dtype=np.float32)
    xb = np.ascontiguousarray(xb, dtype=np.float32)
    n, d = xb.shape
    nlist = max(1, min(n // 39, int(round(4 * math.sqrt(n)))))
    quantizer = faiss.IndexFlatL2(d)
    index = faiss.IndexIVFFlat(quantizer, d, nlist)
    index.cp.seed = seed
    index.cp.min_points_per_centroid = 1  # no sampling warning: the sample is drawn here
    sample = np.random.default_rng(seed).permutation(n)[: IVF_TRAIN_PER_LIST * nlist]
    index.train(xb[np.sort(sample)])
    index.add(xb)
    index.nprobe = min(nprobe, nlist)
    if progress is not None:
        progress.start(len(xq), (what or f"{k}-NN") + f" (IVF {nlist} lists, nprobe {index.nprobe})")
    parts = []
    for lo in range(0, len(xq), KNN_CHUNK):
        I = index.search(xq[lo : lo + KNN_CHUNK], k)[1]
        short = (I < 0).any(axis=1)
        if short.any():  # too few vectors in the visited lists: those rows exactly
            I[short] = faiss.knn(xq[lo : lo + KNN_CHUNK][short], xb, k)[1]
        parts.append(I)
        if progress is not None:
            progress.advance(len(I))
    if progress is not None:
        progress.finish()
    return np.concatenate(parts) if len(parts) > 1 else parts[0]
