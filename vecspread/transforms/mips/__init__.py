"""Asymmetric lifts that turn maximum inner product search (MIPS) into a problem LSH can index."""

from vecspread.limits import MAX_DIM
from vecspread.params import Param, ParamSet, seed_param
from vecspread.registry import Spec

_PANEL = "MIPS options (sign-alsh, l2-alsh, simple-lsh)"
#: what the lifts serve: inner products (and cosine, the inner product of unit vectors)
_DOT = ("dot", "angular")


def _norm_terms(default: int) -> Param:
    return Param("norm_terms", int, default, "Number of appended norm powers m", ge=1, le=64)


def _max_norm(default: float) -> Param:
    return Param("max_norm", float, default, "Largest database norm after scaling, the papers' U, in (0, 1)",
                 gt=0, lt=1)


_PROJECTION = (
    Param("bits", int, help="Signed random projections (a multiple of 8)", ge=1, le=MAX_DIM, default_text="64"),
    seed_param(0),
    Param("lift_only", bool, False, "Output the lifted vectors P(x) / Q(q) without the random projection "
          "(no codec), to train another method --after it"),
)

SIGN_ALSH = Spec("sign-alsh", "vecspread.transforms.mips.transforms:SignALSHTransform",
                 ParamSet(_norm_terms(2), _max_norm(0.75), *_PROJECTION, panel=_PANEL),
                 "MIPS: Sign-ALSH lift + Gaussian projection (use with sign codes)", codec="sign", distances=_DOT)
L2_ALSH = Spec("l2-alsh", "vecspread.transforms.mips.transforms:L2ALSHTransform",
               ParamSet(_norm_terms(3), _max_norm(0.83), panel=_PANEL),
               "MIPS: L2-ALSH lift; trains an E2LSH codec (integer bucket ids, collision count)", codec="l2lsh",
               distances=_DOT)
SIMPLE_LSH = Spec("simple-lsh", "vecspread.transforms.mips.transforms:SimpleLSHTransform",
                  ParamSet(*_PROJECTION, panel=_PANEL),
                  "MIPS: Simple-LSH lift (unit-norm P(x)) + Gaussian projection (use with sign codes)", codec="sign",
                  distances=_DOT)
SPECS = (SIGN_ALSH, L2_ALSH, SIMPLE_LSH)
