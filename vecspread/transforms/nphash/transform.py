"""NPhash: neural proxy hashing into Hamming space (D. Idelson, "Hamming Space Locality Preserving
Neural Hashing for Similarity Search", GSI Technology, 2020). No public code exists; written from the
paper's description (Sections 2-4), with every point it leaves open decided below.

Network (``hidden_layers`` = 2, ``dint`` = 1024: the paper's Table 1 setting)::

    [Linear -> BN -> ReLU] x hidden_layers -> Linear(dint, bits) = u      (the embedding layer)
    (--embedding-bn: u = BN(Linear(dint, bits)), that batch norm kept at inference)
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
- **Epoch**: one pass over the training vectors as queries, in a fresh random order; the last batch may
  be smaller (batch norm sees its proxies as well, so even one query is fine).
- **Validation**: by default a held-out slice of ``fit``'s input, min(10000, n // 10) database vectors and
  min(1000, n // 100) queries; the sign codes are validated and the kept epoch is the trainer's rule
  (the latest within one standard error of the best; it was the strict best before the trainer was shared,
  a choice its issue never measured).
- **Batch norm before the sign** (``embedding_bn``): the paper's "all layers following the last BN are
  omitted at inference" implies one after the embedding layer; with it the codes are the signs of BN(u)
  (running statistics). Measured on debsift200k, 64 bits, 10-minute budget (2 epochs): 1-recall@10 0.390
  with, 0.394 without (benchmarks/RESULTS.md): equal within noise, so it is an option, off.
- **Lifetime sparsity** (``wta_sparsity``, seed 002; ``vecspread.neural.sparsity``): in training each hidden
  unit keeps its largest activations over the step's rows, right after its ReLU; released at inference.
  After every epoch the batch-norm running statistics are re-estimated on the training vectors with it
  released, since the layers after a sparse one would otherwise normalise the dense activations of
  inference with statistics of sparse ones. Off by default; measured in benchmarks/RESULTS.md.
- **Hamming ties** at search time: SignCodec's rule is kept (equal distances in id order, as faiss).
  The paper says nothing; at 64 bits ties are frequent, and id order is deterministic and, for ids
  unrelated to the query, equal in expectation to a random tie order. Measured (benchmark's
  ``recall_random_ties``): 1-recall@10 0.330 with id order vs 0.325 expected with random order.

The split, input scale, reproducibility, validation, budget and checkpoints are the shared trainer's
(``vecspread.neural.trainer``).
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from vecspread.errors import ConfigError
from vecspread.neural.mlp import MLP, build_mlp
from vecspread.neural.trainer import Objective
from vecspread.transforms.neural import NeuralTransform
from vecspread.transforms.nphash import SPEC


class NPHashTransform(NeuralTransform):
    """MLP trained so that the Hamming similarities of its sign codes reproduce, as a softmax
    distribution over each query's k nearest random proxies, the input cosine similarities.

    ``fit`` takes (n, d_in) float32 training vectors; ``apply`` maps (n, d_in) float32 to (n, bits)
    float32 embedding-layer outputs u, whose signs are the codes (the sign codec it trains with).
    """

    spec = SPEC

    def build_network(self, d_in: int) -> MLP:
        """[Linear -> BN -> ReLU] x hidden_layers -> Linear(dint, bits) (-> BN(bits) with ``embedding_bn``):
        the embedding u (no normalisation: the relaxation normalises itself)."""
        return build_mlp(d_in, self.bits, self.dint, self.hidden_layers, "bn-relu", normalize=False,
                         out_bn=bool(self.embedding_bn), wta_sparsity=self.wta_sparsity)

    def resolved(self) -> dict[str, Any]:
        return {"beta": self.effective_beta()}

    def effective_beta(self) -> float:
        """``beta``, or sqrt(bits) (the paper's value) when None."""
        return float(self.beta) if self.beta is not None else math.sqrt(int(self.bits))

    def objective(self, ntr: int, nq: int, report: Any) -> "NPHashObjective":
        n_prox = min(int(self.proxies), ntr)
        if self.k > n_prox - 1:
            raise ConfigError(
                f"nphash: k = {self.k} neighbours need at least k + 1 = {self.k + 1} proxies (the query itself "
                f"may be drawn and is excluded); there are {n_prox} ({ntr} training vectors after holding out "
                f"the validation vectors, proxies {self.proxies})"
            )
        return NPHashObjective(self, ntr, n_prox)


class NPHashObjective(Objective):
    """Each step: a batch of queries, fresh random proxies, the KL loss over each query's nearest proxies."""

    def __init__(self, t: NPHashTransform, ntr: int, n_prox: int) -> None:
        self.t, self.ntr, self.n_prox = t, ntr, n_prox
        self.beta = t.effective_beta()

    def describe(self) -> str:
        t = self.t
        return (f"{t.bits} bits, {t.hidden_layers}x{t.dint} hidden, k {t.k}, {self.n_prox} proxies per batch, "
                f"tau_in {t.tau_in:g} tau_out {t.tau_out:g} beta {self.beta:.3g}, kl {t.kl}, {t.optimizer} "
                f"lr {t.lr:g}, batch {t.batch_size}" + (f", wta sparsity {t.wta_sparsity:g}%" if t.wta_sparsity is not None else ""))

    def optimizer(self, net: nn.Module) -> torch.optim.Optimizer:
        """Adam (default, constant learning rate, no weight decay) or SGD with momentum."""
        if self.t.optimizer == "adam":
            return torch.optim.Adam(net.parameters(), lr=float(self.t.lr))
        return torch.optim.SGD(net.parameters(), lr=float(self.t.lr), momentum=float(self.t.momentum))

    def n_steps(self, ntr: int) -> int:
        return -(-ntr // int(self.t.batch_size))

    def prepare(self, x_train: np.ndarray, xs: np.ndarray, device: torch.device) -> str:
        """The network inputs (scaled) and the unit rows of the training vectors (for cosines)."""
        self.device = device
        self.xs = torch.from_numpy(xs).to(device)
        norms = np.linalg.norm(x_train, axis=1)
        unit = x_train / np.where(norms > 0, norms, 1)[:, None].astype(np.float32)
        self.xu = torch.from_numpy(np.ascontiguousarray(unit, dtype=np.float32)).to(device)
        return ""

    def begin_epoch(self, epoch: int, net: nn.Module, gen: torch.Generator) -> dict[str, torch.Tensor]:
        """One pass over the training vectors as queries, in a fresh random order."""
        return {"order": torch.randperm(self.ntr, generator=gen)}

    def step(self, net: nn.Module, plan: dict[str, torch.Tensor], b: int,
             gen: torch.Generator) -> tuple[torch.Tensor, int, dict[str, float]]:
        t = self.t
        idx = plan["order"][b * t.batch_size : (b + 1) * t.batch_size]
        prox = torch.randperm(self.ntr, generator=gen)[: self.n_prox]
        loss, n_unique, t_search = nphash_batch_loss(
            net, self.xs, self.xu, idx.to(self.device), prox.to(self.device), int(t.k), self.beta,
            float(t.tau_in), float(t.tau_out), t.kl,
        )
        return loss, int(idx.shape[0]), {"proxies_used": float(n_unique), "t_search": t_search}


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
