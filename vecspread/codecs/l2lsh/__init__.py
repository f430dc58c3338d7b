"""E2LSH codes: integer bucket ids of random projections, ranked by the number of colliding hashes."""

from vecspread.limits import MAX_DIM
from vecspread.params import Param, ParamSet, seed_param
from vecspread.registry import Spec

PARAMS = ParamSet(
    Param("bits", int, 64, "Bits per code: bits/hash_bits hashes (a multiple of 8 and of --hash-bits)", ge=1,
          le=MAX_DIM),
    Param("hash_bits", int, 4, "Bits stored per E2LSH hash", ge=1, le=8),
    Param("r", float, 2.5, "E2LSH bucket width r", gt=0),
    seed_param(0),
)
SPEC = Spec("l2lsh", "vecspread.codecs.l2lsh.codec:L2LSHCodec", PARAMS,
            "E2LSH integer bucket ids, ranked by number of colliding hashes")
