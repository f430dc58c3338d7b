"""Softmax embeddings made for nearest-neighbour search (seed 000: Schmidt & Talwar's study, figure
captions in ``../shared/papers/schmidt-talwar-figure-captions.txt``): a supervised MLP classifier whose
last layer's rows are class vectors, with the seed's three training changes as options. Its
hyper-parameters; the decisions are in the transform's module docstring."""

from __future__ import annotations

from vecspread.limits import MAX_DIM
from vecspread.neural import NEURAL_PARAMS
from vecspread.params import Param, ParamSet
from vecspread.registry import Spec

_SHARED = NEURAL_PARAMS.with_defaults(epochs=20, batch_size=256, lr=1e-3, dint=512, hidden_layers=1)
PARAMS = ParamSet(
    Param("dout", int, 64, "Representation width: the pre-softmax vector, and the class vectors' dimension",
          ge=1, le=MAX_DIM),
    Param("bn_before_softmax", bool, False, "Batch norm on the representation, before the softmax layer (the "
          "seed's first change: the representations' norm becomes nearly constant)"),
    Param("relu_bn_order", str, "standard", "Order of ReLU and batch norm before the softmax layer: standard "
          "(BN then ReLU) or swap (ReLU then BN: the seed's second change; needs --bn-before-softmax)",
          choices=("standard", "swap")),
    Param("unit_class_vectors", bool, False, "Class vectors (the softmax layer's rows) kept at unit norm (the "
          "seed's third change)"),
    *(p for p in _SHARED.replace("hidden_layers", help="Hidden Linear-BN-ReLU blocks before the representation "
                                 "block", ge=0)
      .replace("lr", help="Learning rate (adam)")
      .replace("val_size", default_text="0,min(1000, n/100) (held-out labelled vectors)")
      if p.name != "momentum"),
    panel="Softmax options",
)

SPEC = Spec("softmax", "vecspread.transforms.softmax.transform:SoftmaxTransform", PARAMS,
            "supervised softmax classifier (labels needed); output: its representation, searched among the "
            "class vectors (seed 000)", run_settings=("device", "checkpoint", "resume", "max_minutes"))
