"""Annoy's random-projection trees over flat codes (``search --annoy-trees T``; optional: ``pip install annoy``).

The index is an ``annoy.AnnoyIndex`` of the decoded vectors with the flat codec's metric ("dot" or
"euclidean"), built with ``annoy_trees`` trees from ``annoy_seed`` on one thread. A query visits up to
``annoy_search_k`` tree nodes (Annoy's default: trees x k) and returns Annoy's k best; their exact
distance (-q.x or squared L2, as the flat scanner computes it) is computed here and the list put in
(distance, id) order.
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from vecspread.errors import ConfigError
from vecspread.scanners.base import IndexScanner, ScanResult
from vecspread.scanners.trees import SPEC


def load_annoy() -> Any:
    """The ``annoy`` module, or ConfigError saying how to install it."""
    try:
        import annoy
    except ImportError:
        raise ConfigError("--annoy-trees needs the annoy package: pip install annoy (or vecspread[annoy]); "
                          "it builds from source") from None
    return annoy


class AnnoyScanner(IndexScanner):
    """Annoy trees over the flat codes' vectors; D the exact distance of Annoy's k results."""

    spec = SPEC
    families = ("float",)

    def build(self, code_blocks: Iterable[np.ndarray]) -> Any:
        annoy = load_annoy()
        blocks = [self.codec.decode(np.ascontiguousarray(b, dtype=np.uint8)) for b in code_blocks]
        if not blocks:
            raise ConfigError("no codes to index")
        xb = np.concatenate(blocks)
        index = annoy.AnnoyIndex(xb.shape[1], "dot" if self.codec.metric_ == "dot" else "euclidean")
        index.set_seed(int(self.annoy_seed))
        for i, x in enumerate(xb):
            index.add_item(i, x)
        index.build(int(self.annoy_trees), n_jobs=1)
        return index, xb

    def index_bytes(self, index: Any) -> int:
        return int(index[1].nbytes)

    def search_index(self, index: Any, yq: np.ndarray, k: int) -> ScanResult:
        trees, xb = index
        yq = self.codec.check_queries(yq)
        search_k = -1 if self.annoy_search_k is None else int(self.annoy_search_k)
        D = np.full((len(yq), k), np.inf, np.float32)
        I = np.full((len(yq), k), -1, np.int64)
        for qi, q in enumerate(yq):
            ids = np.asarray(trees.get_nns_by_vector(q, k, search_k), np.int64)
            if not len(ids):
                continue
            x = xb[ids].astype(np.float64)
            dist = (-(x @ q.astype(np.float64)) if self.codec.metric_ == "dot" else
                    ((x - q.astype(np.float64)) ** 2).sum(axis=1)).astype(np.float32)
            order = np.lexsort((ids, dist))
            D[qi, : len(ids)], I[qi, : len(ids)] = dist[order], ids[order]
        return ScanResult(D, I)
