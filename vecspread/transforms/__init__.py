"""The ``train --method`` registry: method name -> its spec (hyper-parameters, class, codec).

Adding a method: its package (a light ``__init__`` with its ``SPEC``, a module with the Transform
subclass) and one line in ``REGISTRY``. A neural method is a small module on ``vecspread.neural``. Importing this
package is cheap (no numpy, torch or faiss), so the command line can list names and options at start-up.
"""

from __future__ import annotations

from vecspread.codecs import REGISTRY as CODECS
from vecspread.params import ParamSet
from vecspread.registry import Registry, Spec
from vecspread.runtime import RUN_PARAMS
REGISTRY = Registry.of_packages("method", "--method", [
    "vecspread.transforms.linear",  # identity, pca, rotation
    "vecspread.transforms.catalyzer",
    "vecspread.transforms.nphash",
    "vecspread.transforms.wta",
    "vecspread.transforms.softmax",  # supervised: class vectors for nearest-neighbour search (seed 000)
    "vecspread.transforms.baselines",  # lsh, lsh-thresholds, itq; pq, opq, lsq (the identity + that codec)
    "vecspread.transforms.mips",  # sign-alsh, l2-alsh, simple-lsh
])

METHOD_NAMES: tuple[str, ...] = REGISTRY.names

#: transform types a model file may hold besides the methods' own: built from fitted stages, not trained
CHAIN = Spec("chain", "vecspread.transforms.chain:ChainTransform", summary="fitted transforms applied in order")


def transform_class(type_name: str) -> type:
    """The Transform class stored under ``type_name`` in a model file (a method's transform or a chain)."""
    if type_name == CHAIN.name:
        return CHAIN.load()
    spec = REGISTRY[type_name]
    if spec.transform is not None:  # a shorthand is stored as the transform it stands for
        raise KeyError(type_name)
    return spec.load()


STORED_TYPES: tuple[str, ...] = tuple(s.name for s in REGISTRY if s.transform is None) + (CHAIN.name,)


def method_params(spec: Spec) -> ParamSet:
    """Every option ``train --method`` takes for ``spec``: the transform's, its codec's, its run settings."""
    params = list(spec.params)
    if spec.codec is not None:
        params += [p for p in CODECS[spec.codec].params if p.name not in spec.params]
    params += [p for p in RUN_PARAMS if p.name in spec.run_settings]
    return ParamSet(*params)
