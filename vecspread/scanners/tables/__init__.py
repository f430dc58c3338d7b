"""Hash-table lookup of binary codes (FALCONN-style): its options, which select it (``search --tables``)."""

from vecspread.params import Param, ParamSet
from vecspread.registry import Spec

PARAMS = ParamSet(
    Param("tables", int, help="Hash-table lookup instead of a full scan (sign codes): L tables; only the "
          "candidates are ranked", ge=1, required=True),
    Param("bits_per_table", int, help="K code bits keying each table (with --tables)", ge=1, le=62, required=True),
    Param("probes", int, 0, "Extra buckets probed per table, nearest keys first (multi-probe)", ge=0),
    Param("table_layout", str, "random", "random: K random bit positions per table; slices: consecutive bits "
          "(as faiss IndexBinaryMultiHash)", choices=("random", "slices")),
    Param("table_seed", int, 0, "Seed of the random bit positions"),
    panel="Hash-table lookup (sign codes)",
)

SPEC = Spec("tables", "vecspread.scanners.tables.scanner:TablesScanner", PARAMS,
            "L hash tables keyed by K code bits, multi-probe, Hamming re-ranking of the candidates")
