"""The spherical lattice S_d^r = {z in Z^d : ||z||^2 = r2} as a codec: exact counts, ranks, asymmetric search."""

from vecspread.params import Param, ParamSet
from vecspread.registry import Spec

SPEC = Spec("lattice", "vecspread.codecs.lattice.codec:LatticeCodec", ParamSet(
    Param("bits", int, help="The largest r^2 whose exact point count fits in this many bits", ge=1),
    Param("r2", int, help="Lattice squared radius (instead of --bits)", ge=1),
), "spherical lattice S_d^r: integer points of squared norm r2 (--r2 or --bits)")
