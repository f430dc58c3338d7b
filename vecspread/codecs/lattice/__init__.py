"""The spherical lattice S_d^r = {z in Z^d : ||z||^2 = r2} as a codec: exact counts, ranks, asymmetric search;
past 64 bits, a product of such lattices over blocks of coordinates (``layout``)."""

from vecspread.limits import MAX_DIM
from vecspread.params import Param, ParamSet
from vecspread.registry import Spec

#: one block's code is a uint64 rank (faiss ZnSphereCodec)
LATTICE_MAX_BITS = 64
#: the largest product code, in bits (512 is the largest the paper's users asked for)
PRODUCT_MAX_BITS = 2048
#: the largest dimension and squared radius faiss's ZnSphereCodec takes
D_MAX = 64
R2_MAX = 512

BLOCKS = Param("blocks", int, help="Cut the vector into this many blocks, each coded on its own spherical lattice "
               "(default: one block up to 64 bits, ceil(bits/64) above)", ge=1, le=MAX_DIM)

SPEC = Spec("lattice", "vecspread.codecs.lattice.codec:LatticeCodec", ParamSet(
    Param("bits", int, help="Code budget: the largest r^2 whose exact point count fits (one block of at most 64 "
          "bits; above, a product of blocks)", ge=1, le=PRODUCT_MAX_BITS),
    Param("r2", int, help="Lattice squared radius of every block (instead of --bits; at most 512)", ge=1),
    BLOCKS,
), "spherical lattice S_d^r: integer points of squared norm r2 (--r2 or --bits); products of them past 64 bits")
