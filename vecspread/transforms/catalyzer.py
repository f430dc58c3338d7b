"""The catalyzer: a small MLP trained to spread vectors uniformly on the unit sphere while keeping
their neighbours (Sablayrolles, Douze, Schmid, Jégou, "Spreading vectors for similarity search",
ICLR 2019, Sections 3-4 and Appendices A-B). Written from the paper's formulas.

Network (``hidden_layers`` = 2, ``bn_order`` = "bn-relu", the paper's 3-layer perceptron)::

    Linear(d_in, dint) -> BN -> ReLU -> Linear(dint, dint) -> BN -> ReLU -> Linear(dint, dout) -> l2-normalise

"relu-bn" puts each ReLU before its BN. Loss per batch (eq. 3 and 4 of the paper)::

    mean_i relu(||f(x_i) - f(x_i+)|| - ||f(x_i) - f(x_i-)||)  +  lam * KoLeo
    KoLeo = -mean_i log(min_{j != i} ||f(x_i) - f(x_j)|| + 1e-8)            (over the batch's anchors)

Decisions the paper leaves open, taken here (each one also noted where it is implemented):

- **Input scale**: inputs are divided by the mean l2 norm of the training vectors. Neighbour ranks are
  unchanged, and the first layer sees vectors of norm ~1 whatever the data (SIFT norms are ~500, Deep
  vectors are already unit). The factor is the weight ``input_scale``, so ``apply`` does the same.
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
- **Validation** with held-out queries, never trained on: ``val_size`` = None holds out
  min(1000, n // 100) queries and searches them in the *training* vectors (their exact nearest
  neighbours there are the ground truth), so that all the rest trains (the earlier default held out
  a 10k database too). On debsift200k this and the kept-epoch rule below took the test 1-recall@10
  of dout 24 + lattice from 0.754 (3 seeds) to 0.767 +- 0.011 (5 seeds; benchmarks/RESULTS.md).
  Cost: one forward pass and one encode of the training set per validation, about 2 s per epoch
  for 99k vectors, except where faiss's lattice encode is slow (dout 16 at 64 bits, r2 512: about
  20 s); ``val_size=(10000, 1000)``, a held-out 10k database, bounds it. A 10k sample of the
  training vectors as the database was also measured; it changed the kept epoch in 2 of 10 runs
  (RESULTS.md). The pair (0, q) does the same with q queries; an int is a held-out database of
  that size (queries: a tenth of it), another pair is (database, queries) both held out; 0 disables
  validation.
  Every ``val_every`` epochs and after the last one, 1-recall@1/10/100 against the exact input-space
  nearest neighbour is measured for the sign codec (Hamming ranking of the sign bits) and the lattice
  codec at ``bits`` (or ``r2``). The model kept at the end is the best by 1-recall@10 of ``val_codec``
  ("lattice" by default, else "sign"), where a later epoch counts as good as the best when it is
  within one binomial standard error of it, sqrt(r (1 - r) / queries) (0.013 for r = 0.8 on 1000
  queries): the latest such epoch is kept. Validation recalls on 1000 queries move by about that
  much from epoch to epoch by chance, and picking the strict maximum kept an earlier, less trained
  epoch in our runs (debsift200k, dout 24: epoch 7 at validation 0.806 over epoch 8 at 0.794; on the
  test queries the epoch-8 model scored 0.766 and the epoch-7 one 0.745). Without validation, the
  last epoch is kept.
- **Searches** (positives, negatives, validation ground truth) run with faiss on the CPU, also when the
  network trains on a GPU.
- **Reproducibility**: initialisation, positive draws and batch order come from one torch.Generator
  seeded with ``seed``; the validation split from numpy's default_rng(seed). With a fixed number of
  threads a CPU run is reproducible bit for bit, and a run resumed from a checkpoint continues it bit
  for bit (the checkpoint holds the network, batch-norm buffers, momentum buffers, generator state,
  epoch counter, best model and history, as numeric HDF5 datasets only; JSON is stored as uint8 bytes).
- **Time budget** (``max_minutes``): after each epoch, when another epoch as long as this one would
  end past the budget, training stops there (that epoch is validated and checkpointed); the best
  model so far is kept. The lr schedule still refers to ``epochs``, so a stopped run has seen only its
  first steps. Used by ``vecspread bench --budget-minutes``; not a training setting for ``resume``.
- **Checkpoints** are written (atomically) at every validation point, i.e. every ``val_every`` epochs and
  after the last, also when validation is disabled. ``resume`` refuses, with a ConfigError, a checkpoint
  whose training settings (every hyper-parameter except val_every, device, threads, checkpoint, resume)
  or training data (size and checksum) differ from the current ones.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from pathlib import Path
from typing import Any, Callable, ClassVar, Protocol, Sequence

import faiss
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from vecspread.artifacts import clean_stale_partials, partial_path
from vecspread.errors import ConfigError, InputError
from vecspread.transforms.base import Transform
from vecspread.transforms.torch_common import (VAL_Q, VAL_Q_SHARE, Reporter, as_matrix, check_compatible, fingerprint,
                                               json_bytes, read_group, resolve_device, thread_limit, val_sizes)

logger = logging.getLogger("vecspread")

#: Appendix A, Table 3 of the paper: best lam per dout (Deep1M, r = 10).
LAMBDA_BY_DOUT: dict[int, float] = {16: 0.05, 24: 0.02, 32: 0.01, 40: 0.005}
#: rows per forward pass at inference and when mining negatives
APPLY_BATCH = 65536
#: added to the nearest-neighbour distance inside KoLeo's log so that duplicates stay finite
KOLEO_EPS = 1e-8
#: 1-recall@k reported at validation
RECALL_KS = (1, 10, 100)
CHECKPOINT_FORMAT = 1

#: hyper-parameters that change the training trajectory or the kept model: a checkpoint written with
#: other values of these cannot be resumed (threads, device, val_every, checkpoint, resume can change)
_TRAINING_KEYS = (
    "dout", "dint", "hidden_layers", "bn_order", "lam", "kpos", "kneg", "self_positive", "bn_stats", "epochs", "batch_size", "lr",
    "momentum", "lr_schedule", "seed", "quantizer_train", "bits", "r2", "val_size", "val_codec",
)


class CatalyzerTransform(Transform):
    """MLP + l2-normalisation trained with a triplet loss and the KoLeo entropy regulariser.

    See the module docstring for the choices made where the paper is silent. ``fit`` takes the learn
    set (n, d_in) float32; ``apply`` maps (n, d_in) float32 to (n, dout) float32 unit vectors.
    Fitted state: ``net_`` (torch module), ``input_scale_``, ``history_`` (one dict per epoch:
    epoch, lr, triplet, koleo, violated, t_mining, t_train, t_val and, at validations,
    sign_r1/r10/r100 and lattice_r1/r10/r100), ``best_epoch_``, ``d_in_``, ``d_out_``.

    Hyper-parameters (keyword only; defaults are the paper's unless noted):

    - ``dout`` output dimension (24), ``dint`` hidden width (1024), ``hidden_layers`` number of
      Linear-BN-ReLU blocks before the output layer (2), ``bn_order`` "bn-relu" or "relu-bn";
    - ``lam`` KoLeo weight (None: Appendix A value for the nearest tabulated dout);
    - ``kpos`` positives per vector (10), ``kneg`` rank of the mined negative (50);
      ``self_positive`` whether the point itself is one of its kpos positives (False);
      ``bn_stats`` "joint" or "per-role" batch-norm statistics in training steps;
    - ``epochs`` (8 here, the paper trains 160+), ``batch_size`` (64), ``momentum`` (0.9),
      ``lr_schedule`` piecewise-constant learning rates spread evenly over the epochs
      (0.1, 0.1, 0.05, 0.01), ``lr`` (0.1) the initial rate: a value other than ``lr_schedule[0]``
      rescales the whole schedule by ``lr / lr_schedule[0]``; ``seed`` (0);
    - ``quantizer_train`` None or "lattice" (end-to-end, straight-through); ``bits`` (64) or ``r2``
      choose the lattice used for end-to-end training and for validation;
    - ``val_every`` epochs between validations (1), ``val_size`` validation split (None: min(1000, n/100)
      held-out queries searched in the training set; 0: none), ``val_codec`` "lattice" or "sign":
      whose 1-recall@10 picks the kept epoch;
    - ``device`` "cpu", "cuda" or "auto"; ``threads`` torch and faiss threads during ``fit``
      (None: leave as set; restored afterwards); ``checkpoint`` HDF5 path written at every
      validation point; ``resume`` checkpoint to continue from (ConfigError when it was written with
      other training settings or other training data).
    """

    name: ClassVar[str] = "catalyzer"
    summary: ClassVar[str] = "MLP spreading vectors on the sphere (triplet + KoLeo loss, Sablayrolles et al. 2019)"

    def __init__(
        self,
        *,
        dout: int = 24,
        dint: int = 1024,
        hidden_layers: int = 2,
        bn_order: str = "bn-relu",
        lam: float | None = None,
        kpos: int = 10,
        kneg: int = 50,
        self_positive: bool = False,
        bn_stats: str = "joint",
        epochs: int = 8,
        batch_size: int = 64,
        lr: float = 0.1,
        momentum: float = 0.9,
        lr_schedule: Sequence[float] = (0.1, 0.1, 0.05, 0.01),
        seed: int = 0,
        quantizer_train: str | None = None,
        bits: int = 64,
        r2: int | None = None,
        val_every: int = 1,
        val_size: int | Sequence[int] | None = None,
        val_codec: str = "lattice",
        device: str = "cpu",
        threads: int | None = None,
        checkpoint: str | None = None,
        resume: str | None = None,
        max_minutes: float | None = None,
    ) -> None:
        self.dout = dout
        self.dint = dint
        self.hidden_layers = hidden_layers
        self.bn_order = bn_order
        self.lam = lam
        self.kpos = kpos
        self.kneg = kneg
        self.self_positive = self_positive
        self.bn_stats = bn_stats
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.momentum = momentum
        self.lr_schedule = lr_schedule
        self.seed = seed
        self.quantizer_train = quantizer_train
        self.bits = bits
        self.r2 = r2
        self.val_every = val_every
        self.val_size = val_size
        self.val_codec = val_codec
        self.device = device
        self.threads = threads
        self.checkpoint = checkpoint
        self.resume = resume
        self.max_minutes = max_minutes

    # ------------------------------------------------------------------ parameters / state

    def get_params(self) -> dict[str, Any]:
        """The ``__init__`` keyword arguments, as JSON-serialisable values (sequences as lists)."""
        vs = self.val_size
        return {
            "dout": int(self.dout),
            "dint": int(self.dint),
            "hidden_layers": int(self.hidden_layers),
            "bn_order": self.bn_order,
            "lam": None if self.lam is None else float(self.lam),
            "kpos": int(self.kpos),
            "kneg": int(self.kneg),
            "self_positive": bool(self.self_positive),
            "bn_stats": self.bn_stats,
            "epochs": int(self.epochs),
            "batch_size": int(self.batch_size),
            "lr": float(self.lr),
            "momentum": float(self.momentum),
            "lr_schedule": [float(v) for v in self.lr_schedule],
            "seed": int(self.seed),
            "quantizer_train": self.quantizer_train,
            "bits": int(self.bits),
            "r2": None if self.r2 is None else int(self.r2),
            "val_every": int(self.val_every),
            "val_size": vs if vs is None or isinstance(vs, int) else [int(v) for v in vs],
            "val_codec": self.val_codec,
            "device": self.device,
            "threads": self.threads,
            "checkpoint": self.checkpoint,
            "resume": self.resume,
            "max_minutes": None if self.max_minutes is None else float(self.max_minutes),
        }

    def get_config(self) -> dict[str, Any]:
        """Parameters (``lam`` resolved to the value used) plus ``d_in``, ``d_out``, ``best_epoch``
        and the per-epoch training ``history``."""
        cfg = super().get_config()
        cfg["lam"] = self.effective_lam()
        cfg["history"] = list(getattr(self, "history_", []))
        cfg["best_epoch"] = getattr(self, "best_epoch_", None)
        return cfg

    def get_weights(self) -> dict[str, np.ndarray]:
        """``input_scale`` (1,) float32 and the network state dict ("net.0.weight", ..., batch-norm
        running statistics included) as numpy arrays."""
        out = {"input_scale": np.array([self.input_scale_], dtype=np.float32)}
        for k, v in self.net_.state_dict().items():
            out[k] = v.detach().cpu().numpy().copy()
        return out

    @classmethod
    def from_state(cls, config: dict[str, Any], weights: dict[str, np.ndarray]) -> "CatalyzerTransform":
        """Rebuild a fitted transform (on the CPU) from ``get_config()`` and ``get_weights()`` output."""
        params = {k: config[k] for k in _PARAM_NAMES if k in config}
        params["device"] = "cpu"
        t = cls(**params)
        t.d_in_ = int(config["d_in"])
        t.d_out_ = int(config["d_out"])
        t.history_ = list(config.get("history") or [])
        t.best_epoch_ = config.get("best_epoch")
        try:
            t.input_scale_ = float(np.asarray(weights["input_scale"]).reshape(-1)[0])
            net = build_network(t.d_in_, t.dout, t.dint, t.hidden_layers, t.bn_order)
            state = {k: torch.from_numpy(np.array(v)) for k, v in weights.items() if k != "input_scale"}
            net.load_state_dict(state, strict=True)
        except (KeyError, RuntimeError) as e:
            raise InputError(f"catalyzer weights do not match its config: {str(e).splitlines()[0]}") from None
        t.net_ = net.eval()
        t._device = torch.device("cpu")
        return t

    def effective_lam(self) -> float:
        """``lam``, or the paper's value for the nearest tabulated dout when ``lam`` is None."""
        if self.lam is not None:
            return float(self.lam)
        nearest = min(LAMBDA_BY_DOUT, key=lambda t: (abs(t - int(self.dout)), t))
        return LAMBDA_BY_DOUT[nearest]

    # ------------------------------------------------------------------ inference

    def apply(self, x: np.ndarray) -> np.ndarray:
        """(n, d_in) float32 -> (n, dout) float32 unit vectors (eval mode, batches of 65536 rows)."""
        x = as_matrix(x, "apply input")
        if x.shape[1] != self.d_in_:
            raise InputError(f"catalyzer was trained on dimension {self.d_in_}, got vectors of dimension {x.shape[1]}")
        return _forward_all(self.net_, x, self.input_scale_, self._device)

    # ------------------------------------------------------------------ training

    def fit(self, xt: np.ndarray, *, progress: Any = None) -> "CatalyzerTransform":
        """Train on (n, d_in) training vectors (float32, or any real dtype, converted); returns self.

        A validation slice is carved out of ``xt`` first (see ``val_size``) and not trained on.
        ``progress``: a ``Progress`` (``log(str)``, optionally ``start(total)``/``advance(n)``);
        None sends the lines to the "vecspread" logger at INFO level.
        """
        self._check_params()
        report = Reporter(progress)
        with thread_limit(self.threads):
            self._fit(as_matrix(xt, "training set"), report)
        return self

    def _fit(self, xt: np.ndarray, report: Reporter) -> None:
        t_start = time.perf_counter()
        n, d_in = xt.shape
        device = resolve_device(self.device)
        lam = self.effective_lam()

        # --- split: validation slice first, so the training set never contains it
        ndb, nq = self._val_sizes(n)
        perm = np.random.default_rng(self.seed).permutation(n)
        val_q, val_db = np.sort(perm[:nq]), np.sort(perm[nq : nq + ndb])
        train_ids = np.sort(perm[nq + ndb :])
        x_train = xt[train_ids]
        ntr = x_train.shape[0]
        if ntr < max(self.kpos, self.kneg) + 2:
            raise InputError(
                f"catalyzer needs more than max(kpos, kneg) + 1 = {max(self.kpos, self.kneg) + 1} training "
                f"vectors; got {ntr} after holding out {nq + ndb} for validation"
            )
        mean_norm = float(np.linalg.norm(x_train, axis=1).astype(np.float64).mean())
        if not math.isfinite(mean_norm) or mean_norm <= 0:
            raise InputError("training vectors have a zero or non-finite mean norm")
        scale = 1.0 / mean_norm
        data_key = fingerprint(xt)

        # the lattice is built before any training so that an impossible bits/dout fails at once; it is
        # optional only when nothing depends on it (sign-selected validation, no end-to-end training)
        train_lattice = self.quantizer_train == "lattice"
        try:
            lattice = self._lattice_codec(np.eye(1, self.dout, dtype=np.float32))
        except ConfigError as e:
            if train_lattice or (nq > 0 and self.val_codec == "lattice"):
                raise
            lattice = None
            report.log(f"no lattice validation: {e}")
        quantize = lattice.quantize if train_lattice and lattice is not None else None

        # --- network, optimiser, generator (init draws come from the generator)
        gen = torch.Generator().manual_seed(int(self.seed))
        net = build_network(d_in, self.dout, self.dint, self.hidden_layers, self.bn_order)
        init_network(net, gen)
        net.to(device)
        opt = torch.optim.SGD(net.parameters(), lr=self.lr_schedule[0], momentum=self.momentum)
        self.d_in_, self.d_out_ = d_in, int(self.dout)
        self.input_scale_ = scale
        self.net_, self._device = net, device

        start_epoch, history = 0, []
        best_score, best_epoch, best_state = -math.inf, None, None
        run_key = {**{k: self.get_params()[k] for k in _TRAINING_KEYS}, "lam": lam, "data": data_key}
        run_key["quantizer_train"] = "lattice" if train_lattice else None
        if self.resume:
            ck = read_checkpoint(self.resume)
            check_compatible(ck["run_key"], run_key, self.resume)
            _load_state(net, ck["model"])
            _load_momentum(opt, ck["momentum"], device)
            gen.set_state(torch.from_numpy(ck["torch_rng"]))
            start_epoch, history = ck["epoch"], ck["history"]
            best_score, best_epoch = ck["best_score"], ck["best_epoch"]
            best_state = ck["best"] and {k: torch.from_numpy(v).to(device) for k, v in ck["best"].items()}
            report.log(f"resumed from {self.resume} after epoch {start_epoch}")

        # --- fixed data for the whole run
        t0 = time.perf_counter()
        xs_train = np.ascontiguousarray(x_train * np.float32(scale), dtype=np.float32)
        pos_knn = torch.from_numpy(positive_lists(xs_train, self.kpos, self.self_positive))
        validator = None
        if nq > 0:
            xdb = xt[val_db] if ndb > 0 else x_train  # ndb 0: the queries are searched in the training set
            validator = _Validator(xdb, xt[val_q], scale, self if lattice is not None else None, device)
        report.log(
            f"catalyzer: {ntr} training vectors (d={d_in}), validation "
            f"{f'{ndb} + {nq} queries' if ndb else f'{nq} queries in the training set'}, dout {self.dout}, "
            f"dint {self.dint}, lam {lam:g}, {self.epochs} epochs on {device}; "
            f"positives ({self.kpos}-NN) in {time.perf_counter() - t0:.1f}s"
        )
        x_dev = torch.from_numpy(xs_train).to(device)
        nb = n_batches(ntr, self.batch_size)
        report.start(self.epochs * nb, "train catalyzer")
        report.advance(start_epoch * nb)

        for epoch in range(start_epoch, self.epochs):
            lr = self.lr_at(epoch)
            for group in opt.param_groups:
                group["lr"] = lr
            # --- mining: negatives on the current outputs, one positive per vector
            t0 = time.perf_counter()
            y_all = _forward_all(net, xs_train, 1.0, device)
            neg = exclude_self(_knn(y_all, y_all, self.kneg + 1), self.kneg)[:, self.kneg - 1]
            neg = torch.from_numpy(neg).to(device)
            draw = torch.randint(self.kpos, (ntr,), generator=gen)
            pos = pos_knn[torch.arange(ntr), draw].to(device)
            order = torch.randperm(ntr, generator=gen).to(device)
            t_mine = time.perf_counter() - t0

            # --- steps
            t0 = time.perf_counter()
            net.train()
            sums = np.zeros(3)
            seen = 0
            pending = 0
            for b in range(nb):
                idx = order[b * self.batch_size : (b + 1) * self.batch_size]
                bs = idx.shape[0]
                if self.bn_stats == "per-role":
                    ya = net(x_dev[idx])
                    ypn = torch.cat([net(x_dev[pos[idx]]), net(x_dev[neg[idx]])])
                else:
                    y = net(torch.cat([x_dev[idx], x_dev[pos[idx]], x_dev[neg[idx]]]))
                    ya, ypn = y[:bs], y[bs:]
                if quantize is not None:
                    ypn = straight_through(ypn, quantize)
                l_rank, violated = triplet_loss(ya, ypn[:bs], ypn[bs:], return_violations=True)
                l_koleo = koleo_loss(ya)
                loss = l_rank + lam * l_koleo
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sums += bs * np.array([l_rank.item(), l_koleo.item(), violated.item()])
                seen += bs
                pending += 1
                if pending == 32 or b == nb - 1:
                    report.advance(pending)
                    pending = 0
            net.eval()
            t_train = time.perf_counter() - t0
            if not all(math.isfinite(v) for v in sums):
                raise ConfigError(f"catalyzer training diverged at epoch {epoch + 1} (lr {lr:g}): lower --lr")

            rec: dict[str, Any] = {
                "epoch": epoch + 1, "lr": lr, "triplet": float(sums[0] / seen), "koleo": float(sums[1] / seen),
                "violated": float(sums[2] / seen), "t_mining": t_mine, "t_train": t_train,
            }
            # --- time budget: stop when another epoch like this one would overrun it
            elapsed = time.perf_counter() - t_start
            out_of_time = (self.max_minutes is not None and epoch + 1 < self.epochs
                           and elapsed + t_mine + t_train > 60 * self.max_minutes)
            # --- validation + checkpoint
            at_check = (epoch + 1) % max(1, self.val_every) == 0 or epoch + 1 == self.epochs or out_of_time
            t0 = time.perf_counter()
            mark = ""
            if at_check and validator is not None:
                rec.update(validator.run(net))
                key = f"{self.val_codec}_r10"
                best_score = max(best_score, rec[key])
                scores = [(r["epoch"], r[key]) for r in [*history, rec] if key in r]
                if kept_epoch(scores, validator.nq) == epoch + 1:
                    best_epoch, mark = epoch + 1, " *"
                    best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
            rec["t_val"] = time.perf_counter() - t0
            history.append(rec)
            # the checkpoint is on disk before the epoch is reported, so whatever interrupts the run
            # after the report (or during the next epoch) can resume from this epoch
            if at_check and self.checkpoint:
                write_checkpoint(
                    self.checkpoint, run_key=run_key, epoch=epoch + 1, net=net, opt=opt, gen=gen,
                    history=history, best_state=best_state, best_score=best_score, best_epoch=best_epoch,
                )
            report.log(_format_epoch(rec, self.epochs) + mark)
            if out_of_time:
                report.log(f"time budget of {self.max_minutes:g} min reached after epoch {epoch + 1}: stopping")
                break

        if best_state is not None:
            net.load_state_dict(best_state)
        else:
            best_epoch = self.epochs
        net.eval()
        self.history_ = history
        self.best_epoch_ = best_epoch
        if validator is not None and best_epoch is not None:
            kept = next(r[f"{self.val_codec}_r10"] for r in history if r["epoch"] == best_epoch)
            line = f"kept the model of epoch {best_epoch} ({self.val_codec} 1-recall@10 {kept:.4f}"
            if kept < best_score:
                top = next(r["epoch"] for r in history if r.get(f"{self.val_codec}_r10") == best_score)
                line += (f"; the best, {best_score:.4f} at epoch {top}, is within one standard error "
                         f"({recall_stderr(best_score, validator.nq):.4f})")
            report.log(line + ")")

    def lr_at(self, epoch: int) -> float:
        """Learning rate of 0-based ``epoch``: ``lr_schedule[floor(epoch * len / epochs)]``, rescaled
        by ``lr / lr_schedule[0]`` (1 with the defaults) so that ``lr`` moves the whole schedule."""
        sched = list(self.lr_schedule)
        value = float(sched[min(len(sched) - 1, (epoch * len(sched)) // int(self.epochs))])
        if float(self.lr) == float(sched[0]):
            return value  # the common case, exactly the tabulated value
        return value * float(self.lr) / float(sched[0])

    def _val_sizes(self, n: int) -> tuple[int, int]:
        """(database, queries) held out of ``n`` training vectors for validation; a database size of 0
        with queries > 0 means the queries are searched in the training vectors themselves."""
        vs = self.val_size
        if vs is None:
            vs = (0, min(VAL_Q, n // VAL_Q_SHARE))
        if not isinstance(vs, (int, np.integer)) and int(vs[0]) == 0 and int(vs[1]) > 0:
            return 0, int(vs[1])  # too many queries: the training-set size check in _fit says so
        return val_sizes(vs, n)

    def _lattice_codec(self, y: np.ndarray) -> Any:
        """A LatticeCodec fitted on (n, dout) float32 ``y`` at ``r2`` or ``bits``."""
        from vecspread.codecs.lattice import LatticeCodec

        codec = LatticeCodec(r2=self.r2) if self.r2 is not None else LatticeCodec(bits=self.bits)
        return codec.fit(y)

    def _check_params(self) -> None:
        def bad(msg: str) -> ConfigError:
            return ConfigError(f"catalyzer: {msg}")

        for key in ("dout", "dint", "hidden_layers", "kpos", "kneg", "epochs", "batch_size", "val_every"):
            v = getattr(self, key)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
                raise bad(f"{key} must be a positive integer, got {v!r}")
        if self.batch_size < 2:
            raise bad("batch_size must be at least 2 (batch norm and KoLeo need 2 rows)")
        if self.bn_order not in ("bn-relu", "relu-bn"):
            raise bad(f"bn_order must be 'bn-relu' or 'relu-bn', got {self.bn_order!r}")
        if self.bn_stats not in ("joint", "per-role"):
            raise bad(f"bn_stats must be 'joint' or 'per-role', got {self.bn_stats!r}")
        if self.self_positive and self.kpos < 2:
            raise bad("self_positive needs kpos >= 2 (the point itself plus at least one neighbour)")
        if self.quantizer_train not in (None, "none", "lattice"):
            raise bad(f"quantizer_train must be None or 'lattice', got {self.quantizer_train!r}")
        if self.val_codec not in ("lattice", "sign"):
            raise bad(f"val_codec must be 'lattice' or 'sign', got {self.val_codec!r}")
        if self.device not in ("cpu", "cuda", "auto"):
            raise bad(f"device must be 'cpu', 'cuda' or 'auto', got {self.device!r}")
        if self.lam is not None and not (math.isfinite(self.lam) and self.lam >= 0):
            raise bad(f"lam must be >= 0, got {self.lam!r}")
        if not self.lr_schedule or any(not (v > 0) for v in self.lr_schedule):
            raise bad(f"lr_schedule must be a non-empty list of positive learning rates, got {self.lr_schedule!r}")
        if not (0 <= self.momentum < 1):
            raise bad(f"momentum must be in [0, 1), got {self.momentum!r}")
        vs = self.val_size
        if vs is not None and not isinstance(vs, (int, np.integer)) and len(vs) != 2:
            raise bad(f"val_size must be None, an int or a (database, queries) pair, got {vs!r}")


_PARAM_NAMES = tuple(CatalyzerTransform().get_params())


class Progress(Protocol):
    """What ``fit(progress=...)`` may receive: ``log`` is required, ``start``/``advance`` optional.

    ``log(line)`` gets one line per epoch; ``start(total)`` is called once with the number of training
    steps of the whole run and ``advance(n)`` after every few steps (on resume, the steps already done
    are advanced at once).
    """

    def log(self, line: str) -> None: ...


# ====================================================================== network


class L2Normalize(nn.Module):
    """Rows scaled to unit l2 norm (the catalyzer's last layer; no parameters)."""

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return F.normalize(y, p=2.0, dim=1, eps=1e-12)


class CatalyzerNet(nn.Module):
    """``self.net`` is the nn.Sequential, so state-dict names read "net.0.weight", ..."""

    def __init__(self, layers: list[nn.Module]) -> None:
        super().__init__()
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def build_network(d_in: int, dout: int, dint: int, hidden_layers: int, bn_order: str) -> CatalyzerNet:
    """[Linear -> BN -> ReLU] x hidden_layers (ReLU -> BN for "relu-bn") -> Linear(dint, dout) -> normalise."""
    layers: list[nn.Module] = []
    d = d_in
    for _ in range(hidden_layers):
        layers.append(nn.Linear(d, dint))
        if bn_order == "bn-relu":
            layers += [nn.BatchNorm1d(dint), nn.ReLU()]
        else:
            layers += [nn.ReLU(), nn.BatchNorm1d(dint)]
        d = dint
    layers += [nn.Linear(d, dout), L2Normalize()]
    return CatalyzerNet(layers)


def init_network(net: nn.Module, gen: torch.Generator) -> None:
    """PyTorch's default Linear init, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases, drawn
    from ``gen`` instead of the global RNG so that runs are reproducible; batch norm: weight 1, bias 0."""
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.Linear):
                bound = 1.0 / math.sqrt(m.in_features)
                nn.init.uniform_(m.weight, -bound, bound, generator=gen)
                nn.init.uniform_(m.bias, -bound, bound, generator=gen)
            elif isinstance(m, nn.BatchNorm1d):
                m.reset_parameters()


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


# ====================================================================== mining / search helpers


def exclude_self(I: np.ndarray, k: int) -> np.ndarray:
    """(n, k+1) int64 neighbour ids of points 0..n-1 among themselves -> (n, k) without each point's id.

    Where the point is not in its own list (exact duplicates filled it), the last column is dropped.
    """
    n = I.shape[0]
    is_self = I == np.arange(n)[:, None]
    missing = ~is_self.any(axis=1)
    is_self[missing, -1] = True
    return np.ascontiguousarray(I[~is_self].reshape(n, I.shape[1] - 1)[:, :k])


def positive_lists(x: np.ndarray, kpos: int, self_positive: bool) -> np.ndarray:
    """(n, kpos) int64 positive candidates of the (n, d) float32 training vectors ``x``.

    Without ``self_positive``: the kpos nearest *other* vectors (the point excluded by id). With it:
    the point itself, then its kpos - 1 nearest others -- what a k-NN of the training set in itself
    gives when there are no exact duplicates.
    """
    if not self_positive:
        return exclude_self(_knn(x, x, kpos + 1), kpos)
    others = exclude_self(_knn(x, x, kpos), kpos - 1)
    return np.ascontiguousarray(np.hstack([np.arange(x.shape[0], dtype=others.dtype)[:, None], others]))


def kept_epoch(scores: Sequence[tuple[int, float]], nq: int) -> int | None:
    """The epoch validation keeps, from (epoch, 1-recall@10) pairs in order: the latest whose score is
    within one standard error (:func:`recall_stderr` on ``nq`` queries) of the best score. The
    training loop asks it after every validation and keeps the current model when it is the answer."""
    if not scores:
        return None
    best = max(score for _, score in scores)
    return max(epoch for epoch, score in scores if score >= best - recall_stderr(best, nq))


def recall_stderr(recall: float, nq: int) -> float:
    """Binomial standard error of a 1-recall measured on ``nq`` queries: sqrt(r (1 - r) / nq)."""
    if not math.isfinite(recall) or nq <= 0:
        return 0.0
    return math.sqrt(max(recall * (1.0 - recall), 0.0) / nq)


def n_batches(n: int, batch_size: int) -> int:
    """Batches per epoch: full batches, plus the remainder when it has at least 2 rows."""
    full, rest = divmod(n, batch_size)
    return full + (1 if rest >= 2 else 0)


def one_recall_at(I: np.ndarray, gt: np.ndarray, ks: Sequence[int] = RECALL_KS) -> dict[int, float]:
    """Share of queries whose true nearest neighbour ``gt`` (nq,) is within the first k of (nq, K) ``I``."""
    hits = I == gt[:, None]
    return {k: float(hits[:, :k].any(axis=1).mean()) for k in ks}


def _knn(xq: np.ndarray, xb: np.ndarray, k: int) -> np.ndarray:
    """Exact L2 k-NN ids (nq, k) int64 of float32 ``xq`` in ``xb`` (faiss, CPU)."""
    _, I = faiss.knn(np.ascontiguousarray(xq, dtype=np.float32), np.ascontiguousarray(xb, dtype=np.float32), k)
    return I


def _forward_all(net: nn.Module, x: np.ndarray, scale: float, device: torch.device) -> np.ndarray:
    """f(x * scale) in eval mode for (n, d_in) float32, batched; (n, dout) float32 numpy."""
    was_training = net.training
    net.eval()
    out = []
    with torch.no_grad():
        for s in range(0, x.shape[0], APPLY_BATCH):
            xb = torch.from_numpy(np.ascontiguousarray(x[s : s + APPLY_BATCH], dtype=np.float32)).to(device)
            if scale != 1.0:
                xb = xb * scale
            out.append(net(xb).cpu().numpy())
    net.train(was_training)
    if not out:
        return np.zeros((0, net.net[-2].out_features), dtype=np.float32)
    return np.ascontiguousarray(np.concatenate(out), dtype=np.float32)


def _sign_search(ydb: np.ndarray, yq: np.ndarray, k: int) -> np.ndarray:
    """Hamming ranking of the sign bits (bit i = [y_i > 0], packed little-endian, zero-padded to whole
    bytes: the padding is 0 in every code, so it adds no distance) with faiss IndexBinaryFlat;
    (nq, k) int64 ids."""
    cb = np.packbits(ydb > 0, axis=1, bitorder="little")
    cq = np.packbits(yq > 0, axis=1, bitorder="little")
    index = faiss.IndexBinaryFlat(8 * cb.shape[1])
    index.add(cb)
    _, I = index.search(cq, k)
    return I


class _Validator:
    """Held-out database + queries with their exact input-space nearest neighbours."""

    def __init__(self, xdb: np.ndarray, xq: np.ndarray, scale: float, owner: CatalyzerTransform | None,
                 device: torch.device) -> None:
        """``owner`` builds the lattice codec; None skips the lattice recalls."""
        self.xdb = np.ascontiguousarray(xdb * np.float32(scale), dtype=np.float32)
        self.xq = np.ascontiguousarray(xq * np.float32(scale), dtype=np.float32)
        self.gt = _knn(self.xq, self.xdb, 1)[:, 0]
        self.nq = self.xq.shape[0]
        self.k = min(max(RECALL_KS), self.xdb.shape[0])
        self.owner = owner
        self.device = device

    def run(self, net: nn.Module) -> dict[str, float]:
        ydb = _forward_all(net, self.xdb, 1.0, self.device)
        yq = _forward_all(net, self.xq, 1.0, self.device)
        out: dict[str, float] = {}
        for key, val in one_recall_at(_sign_search(ydb, yq, self.k), self.gt).items():
            out[f"sign_r{key}"] = val
        if self.owner is None:
            return out
        codec = self.owner._lattice_codec(ydb)
        _, I = codec.search(yq, [codec.encode(ydb)], self.k)
        for key, val in one_recall_at(np.asarray(I), self.gt).items():
            out[f"lattice_r{key}"] = val
        return out


# ====================================================================== reporting


def _format_epoch(rec: dict[str, Any], epochs: int) -> str:
    s = (
        f"epoch {rec['epoch']}/{epochs} lr {rec['lr']:g} triplet {rec['triplet']:.4f} koleo {rec['koleo']:.4f} "
        f"violated {100 * rec['violated']:.1f}% | mining {rec['t_mining']:.1f}s train {rec['t_train']:.1f}s "
        f"val {rec['t_val']:.1f}s"
    )
    for codec in ("sign", "lattice"):
        if f"{codec}_r10" in rec:
            s += f" | {codec} 1-R@1/10/100 " + "/".join(f"{rec[f'{codec}_r{k}']:.3f}" for k in RECALL_KS)
    return s


# ====================================================================== checkpoints


def write_checkpoint(
    path: str, *, run_key: dict[str, Any], epoch: int, net: nn.Module, opt: torch.optim.Optimizer,
    gen: torch.Generator, history: list[dict[str, Any]], best_state: dict[str, torch.Tensor] | None,
    best_score: float, best_epoch: int | None,
) -> None:
    """Write the full training state to HDF5 at ``path`` atomically (temp file + os.replace).

    The only random source drawn from after the start of training is ``gen`` (the validation split
    comes from numpy's default_rng(seed) and is recomputed on resume), so its state is the RNG state.

    Layout (numeric datasets only): format, epoch, run_key (JSON as uint8), history (JSON as uint8),
    torch_rng (uint8), model/<state-dict name>, momentum/<parameter index>, best/<name>, best_score,
    best_epoch (-1 when none).
    """
    import h5py

    clean_stale_partials(Path(path))
    tmp = str(partial_path(Path(path)))  # obviously partial by name; removed by a later run if killed
    try:
        with h5py.File(tmp, "w") as f:
            f["format"] = np.int64(CHECKPOINT_FORMAT)
            f["epoch"] = np.int64(epoch)
            f["run_key"] = json_bytes(run_key)
            f["history"] = json_bytes(history)
            f["torch_rng"] = gen.get_state().numpy()
            for k, v in net.state_dict().items():
                f[f"model/{k}"] = v.detach().cpu().numpy()
            g = f.create_group("momentum")
            for i, p in enumerate(_params(opt)):
                buf = opt.state.get(p, {}).get("momentum_buffer")
                if buf is not None:
                    g[str(i)] = buf.detach().cpu().numpy()
            b = f.create_group("best")
            for k, v in (best_state or {}).items():
                b[k] = v.detach().cpu().numpy()
            f["best_score"] = np.float64(best_score)
            f["best_epoch"] = np.int64(-1 if best_epoch is None else best_epoch)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_checkpoint(path: str) -> dict[str, Any]:
    """Read a file written by ``write_checkpoint``; InputError when missing or not a checkpoint."""
    import h5py

    if not os.path.exists(path):
        raise InputError(f"checkpoint {path} does not exist")
    try:
        with h5py.File(path, "r") as f:
            if int(f["format"][()]) != CHECKPOINT_FORMAT:
                raise InputError(f"{path}: unsupported catalyzer checkpoint format {int(f['format'][()])}")
            best_epoch = int(f["best_epoch"][()])
            return {
                "epoch": int(f["epoch"][()]),
                "run_key": json.loads(bytes(f["run_key"][()]).decode()),
                "history": json.loads(bytes(f["history"][()]).decode()),
                "torch_rng": np.array(f["torch_rng"][()], dtype=np.uint8),
                "model": read_group(f["model"]),
                "momentum": {int(k): v for k, v in read_group(f["momentum"]).items()},
                "best": read_group(f["best"]) or None,
                "best_score": float(f["best_score"][()]),
                "best_epoch": None if best_epoch < 0 else best_epoch,
            }
    except (OSError, KeyError) as e:
        raise InputError(f"{path} is not a readable catalyzer checkpoint ({e})") from None






def _load_state(net: nn.Module, arrays: dict[str, np.ndarray]) -> None:
    net.load_state_dict({k: torch.from_numpy(v) for k, v in arrays.items()}, strict=True)


def _load_momentum(opt: torch.optim.Optimizer, bufs: dict[int, np.ndarray], device: torch.device) -> None:
    for i, p in enumerate(_params(opt)):
        if i in bufs:
            opt.state[p]["momentum_buffer"] = torch.from_numpy(bufs[i]).to(device)


def _params(opt: torch.optim.Optimizer) -> list[torch.Tensor]:
    return [p for group in opt.param_groups for p in group["params"]]
