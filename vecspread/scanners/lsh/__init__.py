"""FALCONN-style LSH of flat codes: hyperplane or cross-polytope hash tables, multi-probe, exact re-ranking
(``search --lsh hyperplane|crosspolytope``); its options select it."""

from vecspread.limits import MAX_TABLES
from vecspread.params import Param, ParamSet, seed_param
from vecspread.registry import Spec

FAMILIES = ("hyperplane", "crosspolytope")

PARAMS = ParamSet(
    Param("lsh", str, help="LSH tables over flat codes instead of a full scan, as FALCONN builds them: "
          "hyperplane (sign of K random projections) or crosspolytope (closest of +-e_i after K random "
          "rotations); candidates are re-ranked by the exact distance", choices=FAMILIES, required=True),
    Param("lsh_tables", int, 10, "L hash tables (with --lsh)", ge=1, le=MAX_TABLES),
    Param("lsh_hashes", int, None, "K hash functions per table, the key their concatenation (with --lsh)",
          ge=1, le=62, default_text="about log2(n) bits for hyperplane, log(n) / log(2 d) rotations for "
          "crosspolytope (FALCONN's rule)"),
    Param("lsh_probes", int, None, "Buckets probed per query over all tables, in increasing perturbation "
          "score (FALCONN's num_probes; more probes, more candidates, higher recall)", ge=1, le=1 << 24,
          default_text="--lsh-tables (each table's own bucket)"),
    seed_param(0, "Seed of the hash functions", name="lsh_seed"),
    panel="LSH tables (flat codes)",
)

SPEC = Spec("lsh", "vecspread.scanners.lsh.scanner:LSHScanner", PARAMS,
            "FALCONN-style hyperplane / cross-polytope LSH of flat codes, multi-probe, exact re-ranking")
