"""Validation of a network during training: held-out queries, their exact nearest neighbours, the
1-recall@1/10/100 of codes made from the network's outputs, and the rule that picks the kept epoch.

Recall is tie-aware (``vecspread.metrics``): a database vector tied in true distance with the nearest
neighbour counts as the nearest neighbour.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np

from vecspread.errors import ConfigError
from vecspread.knn import knn_blocks
from vecspread.metrics import one_recall_at

#: 1-recall@k reported at validation
RECALL_KS = (1, 10, 100)
#: true neighbours kept per query: enough that exact ties with the nearest one are all known
GT_K = 10
#: default validation slice: at most this many database vectors and queries, and at most these shares of
#: the training set (10,000 + 1,000 of debsift200k's 100k learn vectors)
VAL_DB, VAL_DB_SHARE = 10000, 10
VAL_Q, VAL_Q_SHARE = 1000, 100


def split_sizes(val_size: int | Sequence[int] | None, n: int, default: str) -> tuple[int, int]:
    """(database, queries) held out of ``n`` training vectors for validation.

    None: the method's ``default``, "training-set" (min(1000, n // 100) queries searched in the training
    vectors themselves: database 0) or "held-out" (min(10000, n // 10) + min(1000, n // 100)); an int:
    that many database vectors and a tenth as many queries; a pair: (database, queries), where (0, q)
    searches q held-out queries in the training vectors; 0 (or 0 queries): no validation.
    """
    if val_size is None:
        if default == "training-set":
            return (0, min(VAL_Q, n // VAL_Q_SHARE)) if n // VAL_Q_SHARE else (0, 0)
        val_size = (min(VAL_DB, n // VAL_DB_SHARE), min(VAL_Q, n // VAL_Q_SHARE))
    if isinstance(val_size, (int, np.integer)):
        ndb, nq = int(val_size), int(val_size) // 10
        if ndb <= 0 or nq <= 0:
            return 0, 0
    else:
        ndb, nq = (int(v) for v in val_size)
        if nq <= 0:
            return 0, 0
    if ndb + nq >= n:
        raise ConfigError(f"val_size ({ndb} + {nq} queries) leaves no training vectors out of {n}")
    return ndb, nq


class Validator:
    """Held-out queries ``xq`` (nq, d) and database ``xdb`` (ndb, d) float32, already scaled as the network
    sees them, with their exact L2 neighbours. ``codecs``: label -> a factory of an unfitted codec whose
    1-recall is measured besides the sign bits' (e.g. "lattice")."""

    def __init__(self, xdb: np.ndarray, xq: np.ndarray, codecs: dict[str, Callable[[], Any]]) -> None:
        self.xdb = np.ascontiguousarray(xdb, dtype=np.float32)
        self.xq = np.ascontiguousarray(xq, dtype=np.float32)
        self.nq = len(self.xq)
        self.k = min(max(RECALL_KS), len(self.xdb))
        self.gt_D, self.gt_I = knn_blocks(self.xq, [(0, self.xdb)], min(GT_K, len(self.xdb)))
        self.codecs = codecs

    def run(self, forward: Callable[[np.ndarray], np.ndarray]) -> dict[str, float]:
        """{"sign_r1": ..., "<codec>_r10": ...} for the network ``forward`` ((n, d) -> (n, d_out) float32)."""
        from vecspread.codecs.sign.codec import SignCodec

        ydb, yq = forward(self.xdb), forward(self.xq)
        out = self._recalls("sign", SignCodec(), _whole_bytes(ydb), _whole_bytes(yq))
        for label, make in self.codecs.items():
            out.update(self._recalls(label, make(), ydb, yq))
        return out

    def _recalls(self, label: str, codec: Any, ydb: np.ndarray, yq: np.ndarray) -> dict[str, float]:
        from vecspread.scanners import search

        codec.fit(ydb)
        _, I = search(codec, yq, [codec.encode(ydb)], self.k)
        return {f"{label}_r{k}": one_recall_at(I, self.gt_I, self.gt_D, k) for k in RECALL_KS}


def _whole_bytes(y: np.ndarray) -> np.ndarray:
    """Outputs padded with zero columns to a multiple of 8: the padding is the same 0 bit in every sign
    code, so it adds no Hamming distance."""
    pad = -y.shape[1] % 8
    return np.hstack([y, np.zeros((len(y), pad), y.dtype)]) if pad else y


def kept_epoch(scores: Sequence[tuple[int, float]], nq: int) -> int | None:
    """The epoch validation keeps, from (epoch, 1-recall@10) pairs in order: the latest whose score is
    within one standard error (:func:`recall_stderr` on ``nq`` queries) of the best score.

    Validation recalls on 1000 queries move by about that much from epoch to epoch by chance; the
    strict maximum kept an earlier, less trained epoch in our runs (benchmarks/RESULTS.md).
    """
    if not scores:
        return None
    best = max(score for _, score in scores)
    return max(epoch for epoch, score in scores if score >= best - recall_stderr(best, nq))


def recall_stderr(recall: float, nq: int) -> float:
    """Binomial standard error of a 1-recall measured on ``nq`` queries: sqrt(r (1 - r) / nq)."""
    if not math.isfinite(recall) or nq <= 0:
        return 0.0
    return math.sqrt(max(recall * (1.0 - recall), 0.0) / nq)
