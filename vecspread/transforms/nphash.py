"""NPhash: neural proxy hashing into Hamming space (D. Idelson, "Hamming Space Locality Preserving
Neural Hashing for Similarity Search", GSI Technology, 2020). No public code exists; written from the
paper's description (Sections 2-4), with every point it leaves open decided below.

Network (``hidden_layers`` = 2, ``dint`` = 1024: the paper's Table 1 setting)::

    [Linear -> BN -> ReLU] x hidden_layers -> Linear(dint, bits) = u      (the embedding layer)
    training only:  f = tanh(beta * u / ||u||)                            (relaxed sign, beta = sqrt(bits))
    inference:      code = sign(u)                                        (bit i = [u_i > 0])

``apply`` returns u, the embedding layer's output, so that ``encode --codec sign`` (bit = y > 0) gives the
codes: the paper's inference net drops everything after the embedding layer and takes sgn, and neither
the l2-normalisation nor tanh (odd, increasing) changes a sign.

Loss, for each query q of a batch (Section 3)::

    P = `proxies` training vectors drawn at random for this batch (Section 4)
    x_1..x_k = the k nearest proxies of q by input cosine (exact; q itself excluded by id)
    p_i ∝ exp(S_c(q, x_i) / tau_in),   S_c = cosine of the inputs
    q_i ∝ exp(S_h(f(q), f(x_i)) / tau_out),   S_h(a, b) = a.b / (2 bits) + 1/2
    loss = KL(p || q) = sum_i p_i log(p_i / q_i)        (kl = "pq"; "qp" is KL(q || p))

averaged over the batch. S_h of two +-1 vectors is 1 - Hamming / bits (the share of equal bits).

Decisions the paper leaves open. Measured with short runs on debsift200k (19k learn vectors for
training, 2k proxies so that k = 100 covers the same share of the set as 10k proxies of the full learn
set, 64 bits, 2x1024 hidden): 1-recall@10 of the sign codes on the full 200k database and 1k queries.
One standard error at 1000 queries is ~0.015, so differences below ~0.03 are noise.

- **Temperatures**: the paper's formula has none (tau = 1). SIFT cosines of a query's 100 proxy
  neighbours span ~0.15 and S_h spans ~0.3, so exp(S) is nearly flat: both softmaxes are ~uniform and
  the loss is tiny (~2e-4). ``tau_in`` and ``tau_out`` divide the similarities. After 3 epochs (Adam
  1e-3, batch 256): tau_in = tau_out = 0.003 / 0.01 / 0.03 / 0.1 / 1 gave 0.238 / 0.309 / 0.320 / 0.315
  / 0.306; tau_out = 3 tau_in gave 0.308 (0.01, 0.03) and 0.251 (0.03, 0.1); tau_out = tau_in / 3 gave
  0.287, 0.238, 0.260. Equal temperatures (S_h made to follow S_c with slope 1) matter, their level much
  less: default 0.03 for both. The paper's literal tau = 1 nearly works only because Adam ignores the
  loss's scale (for near-uniform softmaxes the KL is about half the p-weighted variance of
  (S_c - S_h) / tau over the neighbours, a least-squares fit of the centred similarities); with SGD it
  would need a learning rate ~1/tau^2 larger.
- **KL direction**: after 4 epochs KL(q||p) 0.312, KL(p||q) 0.320: equal within noise; the paper's
  ``kl="pq"`` is the default, ``"qp"`` available.
- **Optimizer**: after 4 epochs Adam lr 3e-4 / 1e-3 / 3e-3: 0.295 / 0.320 / 0.330; SGD (momentum 0.9)
  lr 0.1 / 0.01: 0.303 / 0.315. Default Adam, lr 1e-3 (insensitive to the temperatures' scale), constant
  learning rate, no weight decay; ``optimizer="sgd"`` (with ``momentum``) available.
- **Batch size**: with the same 4-minute budget, batch 64 / 256 / 1024: 0.368 / 0.354 / 0.363 (1024 with
  lr 3e-3: 0.346): equal within noise per unit of time (bigger batches share the proxies' forward pass
  among more queries, so they run more epochs). Default 256; ``epochs`` 10.
- **Neighbours**: found exactly, by cosine (the paper's input similarity), among the batch's proxies;
  the query's own id is excluded when it was drawn (a duplicate vector with another id stays). For
  datasets whose norms vary, cosine and L2 neighbours differ; SIFT norms are all ~512 so they agree.
- **Proxies**: ``min(proxies, n_train)`` distinct training vectors drawn uniformly without replacement
  for every batch (torch.randperm). One forward pass per step on [queries; the proxies that are a
  neighbour of at least one query], in train mode, so batch norm uses those rows' statistics; the
  gradient flows through both the queries' and the proxies' embeddings.
- **Input scale**: inputs are divided by the mean l2 norm of the training vectors (as the catalyzer),
  a weight (``input_scale``) that ``apply`` uses too. Cosines are scale-free.
- **Epoch**: one pass over the training vectors as queries, in a fresh random order; the last batch may
  be smaller (batch norm sees its proxies as well, so even one query is fine).
- **Validation** (same rule as the catalyzer): a held-out slice of ``fit``'s input, never trained on;
  ``val_size`` None takes min(10000, n // 10) database vectors and min(1000, n // 100) queries; an int
  is the database size (queries: a tenth), a pair is (database, queries), 0 disables it. 1-recall@1/10/100
  of the sign codes (Hamming ranking by ``SignCodec``) against the exact L2 nearest neighbour, tie-aware
  (``metrics.one_recall_at``). The model kept is the one with the best 1-recall@10 (earliest on ties);
  without validation, the last one.
- **Hamming ties** at search time: SignCodec's rule is kept (equal distances in id order, as faiss).
  The paper says nothing; at 64 bits ties are frequent, and id order is deterministic and, for ids
  unrelated to the query, equal in expectation to a random tie order. Measured (benchmark's
  ``recall_random_ties``): 1-recall@10 0.330 with id order vs 0.325 expected with random order.
- **Time budget**: ``max_minutes`` stops training after the step that exhausts it (possibly mid-epoch);
  the model is then validated, and checkpointed when ``checkpoint`` is set.
- **Reproducibility**: initialisation, batch orders and proxy draws come from one torch.Generator
  seeded with ``seed``; the validation split from numpy's default_rng(seed). With a fixed number of
  threads a CPU run is reproducible bit for bit, and resuming from a checkpoint (written after every
  validation and at a budget stop, possibly mid-epoch) continues it bit for bit: the checkpoint holds the
  network, batch-norm buffers, optimizer state, generator state, the current epoch's order and step,
  best model and history, as numeric HDF5 datasets only (JSON as uint8 bytes). A run resumed from a
  budget stop has, in its history, the extra validation made at the stop. CUDA runs are not
  guaranteed bit-for-bit (non-deterministic kernels).
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any, ClassVar, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from vecspread.errors import ConfigError, InputError
from vecspread.transforms.base import Transform
from vecspread.transforms.catalyzer import build_network, init_network
from vecspread.transforms.torch_common import (
    Reporter,
    as_matrix,
    check_compatible,
    fingerprint,
    forward_batched,
    load_optimizer_arrays,
    load_state_arrays,
    optimizer_arrays,
    read_checkpoint,
    resolve_device,
    state_arrays,
    thread_limit,
    val_sizes,
    write_checkpoint,
)

if TYPE_CHECKING:
    from vecspread.codecs.base import Codec

#: input-space temperature (cosines are divided by it); set by measurement, see the module docstring
TAU_IN = 0.03
#: output-space temperature (relaxed Hamming similarities are divided by it)
TAU_OUT = 0.03
#: 1-recall@k reported at validation
RECALL_KS = (1, 10, 100)
CHECKPOINT_KIND = "nphash"
CHECKPOINT_FORMAT = 1
#: steps between progress advances
_ADVANCE_EVERY = 8

#: hyper-parameters that change the trajectory or the kept model: a checkpoint written with other
#: values cannot be resumed (threads, device, checkpoint, resume, max_minutes may change)
_TRAINING_KEYS = (
    "bits", "dint", "hidden_layers", "beta", "k", "proxies", "tau_in", "tau_out", "kl", "optimizer", "lr",
    "momentum", "batch_size", "epochs", "seed", "val_every", "val_size",
)


class NPHashTransform(Transform):
    """MLP trained so that the Hamming similarities of its sign codes reproduce, as a softmax
    distribution over each query's k nearest random proxies, the input cosine similarities.

    ``fit`` takes (n, d_in) float32 training vectors; ``apply`` maps (n, d_in) float32 to (n, bits)
    float32 embedding-layer outputs u, whose signs are the codes (``encode --codec sign``).
    Fitted state: ``net_`` (torch module), ``input_scale_``, ``history_`` (one dict per epoch),
    ``best_epoch_``, ``d_in_``, ``d_out_`` (= bits).
    """

    name: ClassVar[str] = "nphash"
    summary: ClassVar[str] = "MLP + relaxed sign trained with a KL loss over random proxies (NPhash, Idelson 2020)"

    def __init__(
        self,
        *,
        bits: int = 64,
        dint: int = 1024,
        hidden_layers: int = 2,
        beta: float | None = None,
        k: int = 100,
        proxies: int = 10000,
        tau_in: float = TAU_IN,
        tau_out: float = TAU_OUT,
        kl: str = "pq",
        optimizer: str = "adam",
        lr: float = 1e-3,
        momentum: float = 0.9,
        batch_size: int = 256,
        epochs: int = 10,
        seed: int = 0,
        val_every: int = 1,
        val_size: int | Sequence[int] | None = None,
        max_minutes: float | None = None,
        device: str = "cpu",
        threads: int | None = None,
        checkpoint: str | None = None,
        resume: str | None = None,
    ) -> None:
        self.bits = bits
        self.dint = dint
        self.hidden_layers = hidden_layers
        self.beta = beta
        self.k = k
        self.proxies = proxies
        self.tau_in = tau_in
        self.tau_out = tau_out
        self.kl = kl
        self.optimizer = optimizer
        self.lr = lr
        self.momentum = momentum
        self.batch_size = batch_size
        self.epochs = epochs
        self.seed = seed
        self.val_every = val_every
        self.val_size = val_size
        self.max_minutes = max_minutes
        self.device = device
        self.threads = threads
        self.checkpoint = checkpoint
        self.resume = resume

    # ------------------------------------------------------------------ parameters / state

    def get_params(self) -> dict[str, Any]:
        """The ``__init__`` keyword arguments as JSON-serialisable values (sequences as lists)."""
        vs = self.val_size
        return {
            "bits": int(self.bits),
            "dint": int(self.dint),
            "hidden_layers": int(self.hidden_layers),
            "beta": None if self.beta is None else float(self.beta),
            "k": int(self.k),
            "proxies": int(self.proxies),
            "tau_in": float(self.tau_in),
            "tau_out": float(self.tau_out),
            "kl": self.kl,
            "optimizer": self.optimizer,
            "lr": float(self.lr),
            "momentum": float(self.momentum),
            "batch_size": int(self.batch_size),
            "epochs": int(self.epochs),
            "seed": int(self.seed),
            "val_every": int(self.val_every),
            "val_size": vs if vs is None or isinstance(vs, int) else [int(v) for v in vs],
            "max_minutes": None if self.max_minutes is None else float(self.max_minutes),
            "device": self.device,
            "threads": self.threads,
            "checkpoint": self.checkpoint,
            "resume": self.resume,
        }

    def get_config(self) -> dict[str, Any]:
        """Parameters (``beta`` resolved to the value used) plus ``d_in``, ``d_out``, ``best_epoch`` and
        the per-epoch training ``history``."""
        cfg = super().get_config()
        cfg["beta"] = self.effective_beta()
        cfg["history"] = list(getattr(self, "history_", []))
        cfg["best_epoch"] = getattr(self, "best_epoch_", None)
        return cfg

    def fitted_codec(self) -> "Codec":
        """The sign codec: NPhash's codes are the signs of its embedding (encode needs no --codec)."""
        from vecspread.codecs.binary import SignCodec

        return SignCodec().fit(np.zeros((0, self.d_out_), np.float32))

    def get_weights(self) -> dict[str, np.ndarray]:
        """``input_scale`` (1,) float32 and the network state dict ("net.0.weight", ..., batch-norm
        running statistics included) as numpy arrays."""
        return {"input_scale": np.array([self.input_scale_], dtype=np.float32), **state_arrays(self.net_)}

    @classmethod
    def from_state(cls, config: dict[str, Any], weights: dict[str, np.ndarray]) -> "NPHashTransform":
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
            net = NPHashNet(t.d_in_, t.bits, t.dint, t.hidden_layers)
            load_state_arrays(net, {k: v for k, v in weights.items() if k != "input_scale"})
        except (KeyError, RuntimeError) as e:
            raise InputError(f"nphash weights do not match its config: {str(e).splitlines()[0]}") from None
        t.net_ = net.eval()
        t._device = torch.device("cpu")
        return t

    def effective_beta(self) -> float:
        """``beta``, or sqrt(bits) (the paper's value) when None."""
        return float(self.beta) if self.beta is not None else math.sqrt(int(self.bits))

    # ------------------------------------------------------------------ inference

    def apply(self, x: np.ndarray) -> np.ndarray:
        """(n, d_in) float32 -> (n, bits) float32 embedding-layer outputs u (eval mode); code = [u > 0]."""
        x = np.asarray(x)
        if x.ndim == 2 and x.shape[0] == 0 and x.shape[1] == self.d_in_:
            return np.zeros((0, self.d_out_), dtype=np.float32)
        x = as_matrix(x, "apply input")
        if x.shape[1] != self.d_in_:
            raise InputError(f"nphash was trained on dimension {self.d_in_}, got vectors of dimension {x.shape[1]}")
        return forward_batched(self.net_, x * np.float32(self.input_scale_), self.d_out_, self._device)

    # ------------------------------------------------------------------ training

    def fit(self, xt: np.ndarray, *, progress: Any = None) -> "NPHashTransform":
        """Train on (n, d_in) training vectors (float32, or any real dtype, converted); returns self.

        A validation slice is carved out of ``xt`` first (see ``val_size``) and never trained on.
        ``progress``: an object with ``log(str)`` (and optionally ``start(total, description)`` /
        ``advance(n)``); without one, lines go to the "vecspread" logger at INFO level.
        """
        self._check_params()
        with thread_limit(self.threads):
            self._fit(as_matrix(xt, "training set"), Reporter(progress))
        return self

    def _fit(self, xt: np.ndarray, report: Reporter) -> None:
        t_start = time.perf_counter()
        deadline = None if self.max_minutes is None else t_start + 60.0 * float(self.max_minutes)
        n, d_in = xt.shape
        device = resolve_device(self.device)
        beta = self.effective_beta()

        # --- split: validation slice first, so the training set never contains it
        ndb, nq = self._val_sizes(n)
        perm = np.random.default_rng(self.seed).permutation(n)
        val_q, val_db = np.sort(perm[:nq]), np.sort(perm[nq : nq + ndb])
        x_train = xt[np.sort(perm[nq + ndb :])]
        ntr = x_train.shape[0]
        n_prox = min(int(self.proxies), ntr)
        if self.k > n_prox - 1:
            raise ConfigError(
                f"nphash: k = {self.k} neighbours need at least k + 1 = {self.k + 1} proxies (the query itself "
                f"may be drawn and is excluded); there are {n_prox} ({ntr} training vectors after holding out "
                f"{nq + ndb} for validation, proxies {self.proxies})"
            )
        norms = np.linalg.norm(x_train, axis=1)
        mean_norm = float(norms.astype(np.float64).mean())
        if not math.isfinite(mean_norm) or mean_norm <= 0:
            raise InputError("training vectors have a zero or non-finite mean norm")
        scale = 1.0 / mean_norm

        # --- network, optimizer, generator (initial weights are drawn from the generator)
        gen = torch.Generator().manual_seed(int(self.seed))
        net = NPHashNet(d_in, int(self.bits), int(self.dint), int(self.hidden_layers))
        init_network(net, gen)
        net.to(device)
        opt = self._make_optimizer(net)
        self.d_in_, self.d_out_ = d_in, int(self.bits)
        self.input_scale_ = scale
        self.net_, self._device = net, device

        nb = -(-ntr // int(self.batch_size))
        run_key = {**{k: self.get_params()[k] for k in _TRAINING_KEYS}, "beta": beta, "data": fingerprint(xt)}
        start_epoch, start_step, order, sums, history = 0, 0, None, _EpochSums(), []
        best_score, best_epoch, best_state = -math.inf, None, None
        if self.resume:
            meta, groups = read_checkpoint(self.resume, CHECKPOINT_KIND)
            if meta.get("format") != CHECKPOINT_FORMAT:
                raise InputError(f"{self.resume}: unsupported nphash checkpoint format {meta.get('format')!r}")
            check_compatible(meta["run_key"], run_key, self.resume)
            load_state_arrays(net, groups["model"])
            net.to(device)
            load_optimizer_arrays(opt, groups.get("optimizer", {}))
            gen.set_state(torch.from_numpy(np.array(groups["rng"]["torch"], dtype=np.uint8)))
            start_epoch, start_step, history = meta["epoch"], meta["step"], meta["history"]
            best_score, best_epoch = meta["best_score"], meta["best_epoch"]
            best_state = groups.get("best") or None
            if start_step:
                order = torch.from_numpy(np.array(groups["epoch"]["order"], dtype=np.int64))
                sums = _EpochSums(**meta["sums"])
            where = f"epoch {start_epoch + 1} step {start_step}/{nb}" if start_step else f"epoch {start_epoch}"
            report.log(f"resumed from {self.resume} after {where}")

        # --- fixed tensors for the whole run: network inputs (scaled) and unit vectors (for cosines)
        xs = torch.from_numpy(np.ascontiguousarray(x_train * np.float32(scale))).to(device)
        unit = x_train / np.where(norms > 0, norms, 1)[:, None].astype(np.float32)
        xu = torch.from_numpy(np.ascontiguousarray(unit, dtype=np.float32)).to(device)
        validator = _SignValidator(xt[val_db], xt[val_q], scale, device) if nq > 0 else None
        report.log(
            f"nphash: {ntr} training vectors (d={d_in}), validation {ndb} + {nq} queries, {self.bits} bits, "
            f"{self.hidden_layers}x{self.dint} hidden, k {self.k}, {n_prox} proxies per batch, "
            f"tau_in {self.tau_in:g} tau_out {self.tau_out:g} beta {beta:.3g}, kl {self.kl}, "
            f"{self.optimizer} lr {self.lr:g}, batch {self.batch_size}, {self.epochs} epochs on {device}"
        )
        report.start(self.epochs * nb, "nphash training")
        report.advance(start_epoch * nb + start_step)

        stopped = False
        for epoch in range(start_epoch, self.epochs):
            if order is None:
                order = torch.randperm(ntr, generator=gen)
                sums = _EpochSums()
            net.train()
            pending = 0
            b = start_step
            while b < nb and not stopped:
                idx = order[b * self.batch_size : (b + 1) * self.batch_size]
                t0 = time.perf_counter()
                prox = torch.randperm(ntr, generator=gen)[:n_prox]
                loss, n_unique, t_search = nphash_batch_loss(
                    net, xs, xu, idx.to(device), prox.to(device), int(self.k), beta,
                    float(self.tau_in), float(self.tau_out), self.kl,
                )
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                value = loss.item()
                if not math.isfinite(value):
                    raise ConfigError(f"nphash training diverged at epoch {epoch + 1} (lr {self.lr:g}): lower --lr")
                sums.add(idx.shape[0], value, n_unique, t_search, time.perf_counter() - t0)
                b += 1
                pending += 1
                if pending == _ADVANCE_EVERY or b == nb:
                    report.advance(pending)
                    pending = 0
                stopped = deadline is not None and time.perf_counter() > deadline
            report.advance(pending)
            net.eval()
            partial = b < nb
            rec: dict[str, Any] = {"epoch": epoch + 1, "steps": b, "partial": partial, **sums.record()}

            at_check = (epoch + 1) % max(1, self.val_every) == 0 or epoch + 1 == self.epochs or stopped
            t0 = time.perf_counter()
            mark = ""
            if at_check and validator is not None:
                rec.update(validator.run(net))
                if rec["sign_r10"] > best_score:
                    best_score, best_epoch, mark = rec["sign_r10"], epoch + 1, " *"
                    best_state = state_arrays(net)
            rec["t_val"] = time.perf_counter() - t0
            history.append(rec)
            # on disk before the epoch is reported: whatever interrupts the run later can resume from here
            if at_check and self.checkpoint:
                meta = {
                    "kind": CHECKPOINT_KIND, "format": CHECKPOINT_FORMAT, "run_key": run_key,
                    "epoch": epoch + 1 if not partial else epoch, "step": b if partial else 0,
                    "sums": sums.__dict__ if partial else None, "history": history,
                    "best_score": best_score, "best_epoch": best_epoch,
                }
                groups_out: dict[str, dict[str, np.ndarray]] = {
                    "model": state_arrays(net), "optimizer": optimizer_arrays(opt),
                    "rng": {"torch": gen.get_state().numpy()}, "best": best_state or {},
                }
                if partial:
                    groups_out["epoch"] = {"order": order.numpy()}
                write_checkpoint(self.checkpoint, meta, groups_out)
            report.log(_format_epoch(rec, self.epochs) + mark)
            order, start_step = None, 0
            if stopped:
                report.log(f"time budget of {self.max_minutes:g} min reached after epoch {epoch + 1} step {b}/{nb}")
                break

        if best_state is not None:
            load_state_arrays(net, best_state)
            net.to(device)
        else:
            best_epoch = history[-1]["epoch"] if history else None
        net.eval()
        self.history_ = history
        self.best_epoch_ = best_epoch
        if validator is not None and best_epoch is not None:
            report.log(f"kept the model of epoch {best_epoch} (sign 1-recall@10 {best_score:.4f})")

    def _make_optimizer(self, net: nn.Module) -> torch.optim.Optimizer:
        if self.optimizer == "adam":
            return torch.optim.Adam(net.parameters(), lr=float(self.lr))
        return torch.optim.SGD(net.parameters(), lr=float(self.lr), momentum=float(self.momentum))

    def _val_sizes(self, n: int) -> tuple[int, int]:
        """(database, queries) held out of ``n`` training vectors for validation."""
        return val_sizes(self.val_size, n)

    def _check_params(self) -> None:
        def bad(msg: str) -> ConfigError:
            return ConfigError(f"nphash: {msg}")

        for key in ("bits", "dint", "hidden_layers", "k", "proxies", "batch_size", "epochs", "val_every"):
            v = getattr(self, key)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
                raise bad(f"{key} must be a positive integer, got {v!r}")
        if self.bits % 8:
            raise bad(f"bits must be a multiple of 8 (sign codes are whole bytes), got {self.bits}")
        for key in ("tau_in", "tau_out", "lr"):
            v = getattr(self, key)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise bad(f"{key} must be a positive number, got {v!r}")
        if self.beta is not None and not (math.isfinite(self.beta) and self.beta > 0):
            raise bad(f"beta must be a positive number, got {self.beta!r}")
        if self.kl not in ("pq", "qp"):
            raise bad(f"kl must be 'pq' (KL(p||q), the paper's) or 'qp', got {self.kl!r}")
        if self.optimizer not in ("adam", "sgd"):
            raise bad(f"optimizer must be 'adam' or 'sgd', got {self.optimizer!r}")
        if not (0 <= self.momentum < 1):
            raise bad(f"momentum must be in [0, 1), got {self.momentum!r}")
        if self.device not in ("cpu", "cuda", "auto"):
            raise bad(f"device must be 'cpu', 'cuda' or 'auto', got {self.device!r}")
        if self.max_minutes is not None and not (self.max_minutes > 0):
            raise bad(f"max_minutes must be positive, got {self.max_minutes!r}")
        vs = self.val_size
        if vs is not None and not isinstance(vs, (int, np.integer)) and len(vs) != 2:
            raise bad(f"val_size must be None, an int or a (database, queries) pair, got {vs!r}")


_PARAM_NAMES = tuple(NPHashTransform().get_params())


# ====================================================================== network


class NPHashNet(nn.Module):
    """[Linear -> BN -> ReLU] x hidden_layers -> Linear(dint, bits): the embedding u (n, bits).

    The layers are the catalyzer's (``build_network``) without its final l2-normalisation, so the two
    methods share one MLP definition; state-dict names read "net.0.weight", ...
    """

    def __init__(self, d_in: int, bits: int, dint: int, hidden_layers: int) -> None:
        super().__init__()
        layers = list(build_network(d_in, bits, dint, hidden_layers, "bn-relu").net)
        self.net = nn.Sequential(*layers[:-1])  # drop L2Normalize: the relaxation normalises itself

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


# ====================================================================== loss


def relaxed_sign(u: torch.Tensor, beta: float) -> torch.Tensor:
    """tanh(beta * u / ||u||) row-wise for (n, bits) ``u``: the differentiable stand-in for sign(u)."""
    return torch.tanh(beta * F.normalize(u, p=2.0, dim=-1, eps=1e-12))


def relaxed_hamming_similarity(fa: torch.Tensor, fb: torch.Tensor) -> torch.Tensor:
    """S_h = fa.fb / (2 bits) + 1/2 over the last axis of broadcastable (..., bits) tensors.

    For fa, fb in {-1, +1}^bits this is 1 - Hamming(fa, fb) / bits.
    """
    return (fa * fb).sum(-1) / (2 * fa.shape[-1]) + 0.5


def proxy_neighbors(xq_unit: torch.Tensor, xp_unit: torch.Tensor, q_ids: torch.Tensor, p_ids: torch.Tensor,
                    k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The k proxies of highest cosine to each query, the query itself (same id) excluded.

    ``xq_unit`` (b, d) and ``xp_unit`` (P, d) unit float32 rows, ``q_ids`` (b,) / ``p_ids`` (P,) int64
    training ids. Returns (b, k) cosines (descending) and (b, k) int64 positions into the proxies.
    """
    s = xq_unit @ xp_unit.T
    s = s.masked_fill(q_ids[:, None] == p_ids[None, :], -math.inf)
    return torch.topk(s, k, dim=1)


def proxy_kl_loss(s_in: torch.Tensor, s_out: torch.Tensor, tau_in: float, tau_out: float, kl: str = "pq") -> torch.Tensor:
    """Mean over rows of KL between p = softmax(s_in / tau_in) and q = softmax(s_out / tau_out).

    (b, k) similarities per query and neighbour. ``kl="pq"``: sum p log(p / q) (the paper's);
    ``"qp"``: sum q log(q / p). p carries no gradient (input space).
    """
    log_p = F.log_softmax(s_in.detach() / tau_in, dim=1)
    log_q = F.log_softmax(s_out / tau_out, dim=1)
    if kl == "pq":
        per_query = (log_p.exp() * (log_p - log_q)).sum(1)
    else:
        per_query = (log_q.exp() * (log_q - log_p)).sum(1)
    return per_query.mean()


def nphash_batch_loss(
    net: nn.Module, xs: torch.Tensor, xu: torch.Tensor, q_ids: torch.Tensor, p_ids: torch.Tensor, k: int,
    beta: float, tau_in: float, tau_out: float, kl: str = "pq",
) -> tuple[torch.Tensor, int, float]:
    """The NPhash loss of one batch (see the module docstring).

    ``xs`` (n, d) network inputs and ``xu`` (n, d) unit rows of the training set; ``q_ids`` (b,) query
    ids and ``p_ids`` (P,) proxy ids into them. One forward pass of ``net`` on the queries followed by
    the proxies that are a neighbour of some query. Returns (loss, number of those proxies, seconds
    spent in the neighbour search).
    """
    t0 = time.perf_counter()
    with torch.no_grad():
        s_in, nn_pos = proxy_neighbors(xu[q_ids], xu[p_ids], q_ids, p_ids, k)
        used, inverse = torch.unique(nn_pos, return_inverse=True)  # sorted: deterministic row order
    t_search = time.perf_counter() - t0
    b = q_ids.shape[0]
    f = relaxed_sign(net(torch.cat([xs[q_ids], xs[p_ids[used]]])), beta)
    s_out = relaxed_hamming_similarity(f[:b, None, :], f[b:][inverse])
    return proxy_kl_loss(s_in, s_out, tau_in, tau_out, kl), int(used.shape[0]), t_search


# ====================================================================== validation / reporting


class _SignValidator:
    """Held-out database + queries with their exact L2 neighbours; sign-code recall of a network."""

    def __init__(self, xdb: np.ndarray, xq: np.ndarray, scale: float, device: torch.device) -> None:
        from vecspread.knn import knn_blocks

        self.xdb = np.ascontiguousarray(xdb * np.float32(scale), dtype=np.float32)
        self.xq = np.ascontiguousarray(xq * np.float32(scale), dtype=np.float32)
        self.k = min(max(RECALL_KS), self.xdb.shape[0])
        # enough true neighbours that exact ties with the nearest one are all known (tie-aware recall)
        self.gt_D, self.gt_I = knn_blocks(self.xq, [(0, self.xdb)], min(10, self.xdb.shape[0]))
        self.device = device

    def run(self, net: nn.Module) -> dict[str, float]:
        from vecspread.codecs.binary import SignCodec
        from vecspread.metrics import one_recall_at

        d_out = int(net.net[-1].out_features)
        ydb = forward_batched(net, self.xdb, d_out, self.device)
        yq = forward_batched(net, self.xq, d_out, self.device)
        codec = SignCodec().fit(ydb)
        _, I = codec.search(yq, [codec.encode(ydb)], self.k)
        return {f"sign_r{k}": one_recall_at(I, self.gt_I, self.gt_D, k) for k in RECALL_KS}


class _EpochSums:
    """Running sums of one epoch's steps (JSON-able through ``__dict__``, for mid-epoch checkpoints)."""

    def __init__(self, rows: int = 0, loss: float = 0.0, proxies: float = 0.0, steps: int = 0,
                 t_search: float = 0.0, t_train: float = 0.0) -> None:
        self.rows, self.loss, self.proxies, self.steps = rows, loss, proxies, steps
        self.t_search, self.t_train = t_search, t_train

    def add(self, rows: int, loss: float, proxies: int, t_search: float, t_step: float) -> None:
        self.rows += rows
        self.loss += rows * loss
        self.proxies += proxies
        self.steps += 1
        self.t_search += t_search
        self.t_train += t_step

    def record(self) -> dict[str, float]:
        return {
            "loss": self.loss / max(1, self.rows),
            "proxies_used": self.proxies / max(1, self.steps),
            "t_search": self.t_search,
            "t_train": self.t_train,
        }


def _format_epoch(rec: dict[str, Any], epochs: int) -> str:
    s = (
        f"epoch {rec['epoch']}/{epochs}{' (partial, ' + str(rec['steps']) + ' steps)' if rec['partial'] else ''} "
        f"kl {rec['loss']:.5f} proxies used {rec['proxies_used']:.0f} | train {rec['t_train']:.1f}s "
        f"(search {rec['t_search']:.1f}s) val {rec['t_val']:.1f}s"
    )
    if "sign_r10" in rec:
        s += " | sign 1-R@1/10/100 " + "/".join(f"{rec[f'sign_r{k}']:.3f}" for k in RECALL_KS)
    return s
