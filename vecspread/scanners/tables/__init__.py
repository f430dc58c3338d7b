"""Hash-table lookup of binary codes (FALCONN-style): its options, which select it (``search --tables``)."""

from vecspread.limits import MAX_TABLES
from vecspread.params import Param, ParamSet, seed_param
from vecspread.registry import Spec

PARAMS = ParamSet(
    Param("tables", int, help="Hash-table lookup instead of a full scan (sign codes): L tables; only the "
          "candidates are ranked", ge=1, le=MAX_TABLES, required=True),
    Param("bits_per_table", int, help="K code bits keying each table (with --tables)", ge=1, le=62, required=True),
    Param("probes", int, 0, "Extra buckets probed per table, nearest keys first (multi-probe)", ge=0,
          le=1 << 20),
    Param("table_layout", str, "random", "random: K random bit positions per table; slices: consecutive bits "
          "(as faiss IndexBinaryMultiHash)", choices=("random", "slices")),
    seed_param(0, "Seed of the random bit positions", name="table_seed"),
    panel="Hash-table lookup (sign codes)",
)

SPEC = Spec("tables", "vecspread.scanners.tables.scanner:TablesScanner", PARAMS,
            "L hash tables keyed by K code bits, multi-probe, Hamming re-ranking of the candidates")
