"""vecspread: learned spreading transforms and fixed codes for similarity search.

The Python API (see README, "Python API"; every name is imported on first use, so that ``import
vecspread`` stays as light as the command line needs):

- :class:`Index` (``train``, ``add``, ``search``, ``save``) and :func:`load`, over the same model and
  codes files the CLI writes; :func:`load_transform`;
- transforms (scikit-learn style: keyword hyper-parameters, ``fit``, ``transform``, ``get_params``,
  ``set_params``): ``Catalyzer``, ``NPHash``, ``PCA``, ``Rotation``, ``Identity``, ``LSH``,
  ``LSHThresholds``, ``ITQ``, ``SimpleLSH``, ``SignALSH``, ``L2ALSH``;
- codecs (``fit``, ``encode``, ``decode``): ``SignCodec``, ``LatticeCodec``, ``PQCodec``, ``OPQCodec``,
  ``LSQCodec``, ``L2LSHCodec``;
- ``RunSettings`` (threads, device, checkpoints, a time budget for neural ``fit``).
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_PUBLIC = {
    "Index": "vecspread.api:Index",
    "load": "vecspread.api:load",
    "load_transform": "vecspread.api:load_transform",
    "RunSettings": "vecspread.runtime:RunSettings",
    "Catalyzer": "vecspread.transforms.catalyzer.transform:CatalyzerTransform",
    "NPHash": "vecspread.transforms.nphash.transform:NPHashTransform",
    "PCA": "vecspread.transforms.linear.transforms:PCATransform",
    "Rotation": "vecspread.transforms.linear.transforms:RotationTransform",
    "Identity": "vecspread.transforms.linear.transforms:IdentityTransform",
    "LSH": "vecspread.transforms.baselines.transforms:LSHTransform",
    "LSHThresholds": "vecspread.transforms.baselines.transforms:LSHThresholdsTransform",
    "ITQ": "vecspread.transforms.baselines.transforms:ITQTransform",
    "SimpleLSH": "vecspread.transforms.mips.transforms:SimpleLSHTransform",
    "SignALSH": "vecspread.transforms.mips.transforms:SignALSHTransform",
    "L2ALSH": "vecspread.transforms.mips.transforms:L2ALSHTransform",
    "SignCodec": "vecspread.codecs.sign.codec:SignCodec",
    "LatticeCodec": "vecspread.codecs.lattice.codec:LatticeCodec",
    "PQCodec": "vecspread.codecs.pq.codecs:PQCodec",
    "OPQCodec": "vecspread.codecs.pq.codecs:OPQCodec",
    "LSQCodec": "vecspread.codecs.pq.codecs:LSQCodec",
    "L2LSHCodec": "vecspread.codecs.l2lsh.codec:L2LSHCodec",
}

__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str) -> Any:
    target = _PUBLIC.get(name)
    if target is None:
        raise AttributeError(f"module 'vecspread' has no attribute {name!r}")
    import importlib

    module, _, attr = target.partition(":")
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
