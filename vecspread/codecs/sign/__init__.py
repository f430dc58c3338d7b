"""Sign bits: one bit per output dimension, searched by Hamming distance."""

from vecspread.limits import MAX_DIM
from vecspread.params import Param, ParamSet
from vecspread.registry import Spec

SPEC = Spec("sign", "vecspread.codecs.sign.codec:SignCodec", ParamSet(
    Param("bits", int, help="Checked to equal the model's output dimension (one bit each)", le=MAX_DIM),
), "one sign bit per dimension, Hamming search")
