"""The field's baselines as ``train --method``s, each reproducing a faiss index on the same data.

``lsh``, ``lsh-thresholds`` and ``itq`` are transforms trained with the sign codec; ``pq``, ``opq`` and
``lsq`` are shorthands for the identity transform trained with that codec (``--method pq`` is
``--method identity`` + ``encode --codec pq``, with the codec trained on the method's training set).
"""

from vecspread.codecs import pq
from vecspread.limits import MAX_DIM
from vecspread.params import Param, ParamSet, seed_param
from vecspread.registry import Spec
from vecspread.transforms.linear import IDENTITY

BITS = Param("bits", int, help="One sign bit per projected dimension (a multiple of 8)", required=True,
             le=MAX_DIM)

LSH = Spec("lsh", "vecspread.transforms.baselines.transforms:LSHTransform", ParamSet(
    BITS, seed_param(5, default_text="5, as faiss IndexLSH")),
    "random rotation + sign bits (faiss IndexLSH(d, bits, rotate_data=True))", codec="sign")
LSH_THRESHOLDS = Spec("lsh-thresholds", "vecspread.transforms.baselines.transforms:LSHThresholdsTransform",
                      LSH.params, "random rotation, per-bit median thresholds + sign bits "
                      "(faiss IndexLSH(d, bits, True, True))", codec="sign")
ITQ = Spec("itq", "vecspread.transforms.baselines.transforms:ITQTransform", ParamSet(
    BITS, seed_param(123, default_text="123, as faiss ITQ")),
    "PCA + ITQ rotation + sign bits (faiss index_factory \"ITQ{bits},LSH\")", codec="sign")


def _shorthand(codec: Spec, faiss_name: str) -> Spec:
    return Spec(codec.name, IDENTITY.target, ParamSet(), f"identity + {codec.name} codec: {faiss_name}",
                codec=codec.name, transform=IDENTITY.name)


SPECS = (LSH, LSH_THRESHOLDS, ITQ, _shorthand(pq.PQ, "faiss IndexPQ(d, bits/8, 8)"),
         _shorthand(pq.OPQ, "faiss index_factory \"OPQ{M},PQ{M}\""),
         _shorthand(pq.LSQ, "faiss IndexLocalSearchQuantizer(d, bits/8, 8)"))
