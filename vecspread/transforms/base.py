"""The transform interface: x (n, d_in) float32 -> y (n, d_out) float32.

Every method of ``vecspread train --method`` is a Transform subclass registered in
``vecspread.transforms.REGISTRY``. Conventions (scikit-learn style):

- ``__init__`` only stores hyper-parameters (all JSON-serialisable keyword arguments);
- ``fit(xt)`` learns from (n, d_in) float32 training vectors and returns ``self``;
  learned state lives in attributes ending with ``_``;
- ``apply(x)`` maps (n, d_in) float32 database vectors to (n, d_out) float32;
  ``apply_query(x)`` maps queries (the same unless the method is asymmetric, e.g. MIPS lifts);
- ``get_config()`` returns the JSON-able hyper-parameters plus ``d_in``/``d_out``;
  ``get_weights()`` returns ``{name: ndarray}`` (stored as HDF5 datasets, never pickled);
  ``from_state(config, weights)`` rebuilds a fitted transform from those two.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

if TYPE_CHECKING:
    from vecspread.codecs.base import Codec


class Transform:
    """Base class of all transforms; subclasses set ``name`` and implement fit/apply/state."""

    name: ClassVar[str] = ""
    #: one-line description shown in ``vecspread train --help``
    summary: ClassVar[str] = ""

    d_in_: int
    d_out_: int

    def fit(self, xt: np.ndarray, *, progress: Any = None) -> "Transform":
        """Learn from (n, d_in) float32 training vectors; returns self."""
        raise NotImplementedError

    def apply(self, x: np.ndarray) -> np.ndarray:
        """Map (n, d_in) float32 database vectors to (n, d_out) float32."""
        raise NotImplementedError

    def fitted_codec(self) -> "Codec | None":
        """A codec this method trained together with the transform (e.g. PQ, ITQ's sign bits), else None.

        When present, ``train`` stores it in the model's ``/codec`` group and ``encode`` uses it when
        no ``--codec`` is given.
        """
        return None

    def apply_query(self, x: np.ndarray) -> np.ndarray:
        """Map (n, d_in) float32 queries to (n, d_out) float32 (same as ``apply`` unless asymmetric)."""
        return self.apply(x)

    @property
    def d_in(self) -> int:
        return self.d_in_

    @property
    def d_out(self) -> int:
        return self.d_out_

    def get_params(self) -> dict[str, Any]:
        """Hyper-parameters given to ``__init__`` (JSON-serialisable)."""
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        """Hyper-parameters plus fitted dimensions, stored as JSON in the model artifact."""
        return {**self.get_params(), "d_in": int(self.d_in_), "d_out": int(self.d_out_)}

    def get_weights(self) -> dict[str, np.ndarray]:
        """Learned arrays, each stored as one HDF5 dataset."""
        raise NotImplementedError

    @classmethod
    def from_state(cls, config: dict[str, Any], weights: dict[str, np.ndarray]) -> "Transform":
        """Rebuild a fitted transform from ``get_config()`` and ``get_weights()`` output."""
        raise NotImplementedError
