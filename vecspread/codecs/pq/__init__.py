"""Product-quantizer codecs backed by faiss: PQ, OPQ (rotation + PQ) and LSQ (additive quantizer).

All three use 8-bit sub-quantizers (256 centroids each): ``--bits`` is a multiple of 8 and M = bits / 8.
"""

from vecspread.limits import MAX_DIM
from vecspread.params import Param, ParamSet
from vecspread.registry import Spec

BITS = Param("bits", int, help="M = bits/8 sub-quantizers of 8 bits, e.g. 64 (pq: M must divide the dimension; "
             "opq: M must divide --dout, default the dimension)", required=True, le=MAX_DIM)
TRAIN_ITERS = Param("train_iters", int, help="Training iterations (opq: faiss OPQMatrix.niter, default 50; lsq: "
                    "LocalSearchQuantizer.train_iters, default 25)", ge=1, le=100_000, default_text="faiss's")
ENCODE_ILS_ITERS = Param("encode_ils_iters", int, help="Local-search rounds per encoding; encoding time grows "
                         "linearly", ge=1, le=100_000, default_text="16, faiss's")

OPQ_DOUT = Param("dout", int, help="The rotation's output dimension D, faiss \"OPQ{M}_{D},PQ{M}\" (D <= d; M "
                 "must divide D): a way to a bit budget whose M does not divide d", ge=1, le=MAX_DIM,
                 default_text="the input's d")

PQ = Spec("pq", "vecspread.codecs.pq.codecs:PQCodec", ParamSet(BITS),
          "product quantizer, M = bits/8 sub-quantizers of 8 bits (faiss IndexPQ(d, M, 8), \"PQ{M}\")")
OPQ = Spec("opq", "vecspread.codecs.pq.codecs:OPQCodec", ParamSet(BITS, TRAIN_ITERS, OPQ_DOUT),
           "OPQ rotation + PQ, M = bits/8 (faiss index_factory \"OPQ{M},PQ{M}\", or \"OPQ{M}_{D},PQ{M}\" with --dout)")
LSQ = Spec("lsq", "vecspread.codecs.pq.codecs:LSQCodec", ParamSet(BITS, TRAIN_ITERS, ENCODE_ILS_ITERS),
           "local search quantizer, M = bits/8 additive codebooks (faiss IndexLocalSearchQuantizer(d, M, 8))")
SPECS = (PQ, OPQ, LSQ)
