"""The spherical lattice S_d^r = {z in Z^d : ||z||^2 = r2} as a codec: exact counts, ranks, asymmetric search."""

from vecspread.params import Param, ParamSet
from vecspread.registry import Spec

#: lattice codes are uint64 ranks (faiss ZnSphereCodec)
LATTICE_MAX_BITS = 64
#: the largest dimension and squared radius faiss's ZnSphereCodec takes
D_MAX = 64
R2_MAX = 512

SPEC = Spec("lattice", "vecspread.codecs.lattice.codec:LatticeCodec", ParamSet(
    Param("bits", int, help="The largest r^2 whose exact point count fits in this many bits (codes are uint64 "
          "ranks)", ge=1, le=LATTICE_MAX_BITS),
    Param("r2", int, help="Lattice squared radius (instead of --bits; at most 512)", ge=1),
), "spherical lattice S_d^r: integer points of squared norm r2 (--r2 or --bits)")
