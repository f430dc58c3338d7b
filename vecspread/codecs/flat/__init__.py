"""Flat codes: the float32 vectors themselves (no compression), the exact reference and the database of
the indexes that re-rank with exact distances (FALCONN-style LSH, Annoy)."""

from vecspread.params import Param, ParamSet
from vecspread.registry import Spec

SPEC = Spec("flat", "vecspread.codecs.flat.codec:FlatCodec", ParamSet(
    Param("metric", str, "auto", "Distance of the search: euclidean (squared L2) or dot (largest inner product "
          "first); auto: dot for a softmax model's class vectors, else euclidean",
          choices=("auto", "euclidean", "dot")),
), "the float32 vectors uncompressed (4 d bytes), exact search: the reference, and the database of --lsh and --annoy-trees")
