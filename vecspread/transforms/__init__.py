"""The ``train --method`` registry: method name -> Transform class, imported only when used.

Adding a method: write a Transform subclass in its own module and add one line to ``_METHODS``.
Importing this package is cheap (no numpy, torch or faiss), so the CLI can list the names at start-up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vecspread.registry import load

if TYPE_CHECKING:
    from vecspread.transforms.base import Transform

_METHODS: dict[str, str] = {
    "identity": "vecspread.transforms.linear:IdentityTransform",
    "pca": "vecspread.transforms.linear:PCATransform",
    "rotation": "vecspread.transforms.linear:RotationTransform",
    "catalyzer": "vecspread.transforms.catalyzer:CatalyzerTransform",
    "nphash": "vecspread.transforms.nphash:NPHashTransform",
    "lsh": "vecspread.transforms.baselines:LSHTransform",
    "lsh-thresholds": "vecspread.transforms.baselines:LSHThresholdsTransform",
    "itq": "vecspread.transforms.baselines:ITQTransform",
    "pq": "vecspread.transforms.baselines:PQTransform",
    "opq": "vecspread.transforms.baselines:OPQTransform",
    "lsq": "vecspread.transforms.baselines:LSQTransform",
    "sign-alsh": "vecspread.transforms.mips:SignALSHTransform",
    "l2-alsh": "vecspread.transforms.mips:L2ALSHTransform",
    "simple-lsh": "vecspread.transforms.mips:SimpleLSHTransform",
}

METHOD_NAMES: tuple[str, ...] = tuple(_METHODS)

#: transform types a model file may hold besides the methods: built from fitted stages, not trained
_COMPOSITES: dict[str, str] = {"chain": "vecspread.transforms.chain:ChainTransform"}
STORED_TYPES: tuple[str, ...] = METHOD_NAMES + tuple(_COMPOSITES)


def get_transform_class(name: str) -> type["Transform"]:
    """The Transform class registered as ``name``, a method or a composite (KeyError when unknown)."""
    return load(_METHODS[name] if name in _METHODS else _COMPOSITES[name])
