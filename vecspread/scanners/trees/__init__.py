"""Annoy's random-projection trees over flat codes (``search --annoy-trees T``): its options, which select it.
Annoy is optional (``pip install annoy``)."""

from vecspread.params import Param, ParamSet, seed_param
from vecspread.registry import Spec

PARAMS = ParamSet(
    Param("annoy_trees", int, help="Annoy's random-projection trees over flat codes instead of a full scan: "
          "T trees (optional package: pip install annoy)", ge=1, le=4096, required=True),
    Param("annoy_search_k", int, None, "Tree nodes a query visits (with --annoy-trees); more, higher recall",
          ge=1, le=1 << 30, default_text="trees x k (Annoy's default)"),
    seed_param(0, "Seed of Annoy's trees", name="annoy_seed"),
    panel="Annoy trees (flat codes)",
)

SPEC = Spec("annoy", "vecspread.scanners.trees.scanner:AnnoyScanner", PARAMS,
            "Annoy random-projection trees over flat codes, exact re-ranking (optional package)")
