"""Transforms applied one after another: what ``vecspread train --after MODEL`` stores.

A chain of fitted stages T_1, ..., T_k maps database vectors by ``T_k.apply(... T_1.apply(x))``
and queries by ``T_k.apply_query(... T_1.apply_query(q))``, so an asymmetric first stage (a MIPS
lift) keeps its two sides while a symmetric stage after it (a catalyzer) sees both. Every stage but
the first was fitted on the database-side output of the stages before it.

Stored like any transform: config ``{"stages": [{"type": name, "config": stage config}, ...]}``
plus ``d_in``/``d_out``, and each stage's weights under ``"<i>/<weight name>"`` (an HDF5 subgroup
per stage). A chain is never nested: chaining after a chain appends to its stages.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from vecspread.transforms import CHAIN
from vecspread.transforms.base import Transform


class ChainTransform(Transform):
    """Fitted transforms composed in order; built from fitted stages, never fitted itself."""

    spec = CHAIN

    def __init__(self, stages: Sequence[Transform]) -> None:  # type: ignore[override]
        flat: list[Transform] = []
        for stage in stages:
            flat.extend(stage.stages if isinstance(stage, ChainTransform) else [stage])
        if len(flat) < 2:
            raise ValueError("a chain needs at least two stages")
        for prev, nxt in zip(flat, flat[1:]):
            if prev.d_out != nxt.d_in:
                raise ValueError(f"stage {nxt.name} takes {nxt.d_in}-d input but {prev.name} outputs {prev.d_out}-d")
        self.stages = flat
        self.d_in_ = flat[0].d_in
        self.d_out_ = flat[-1].d_out

    @property
    def method_names(self) -> list[str]:
        """The stages' method names, first to last."""
        return [s.name for s in self.stages]

    def apply(self, x: np.ndarray) -> np.ndarray:
        """(n, d_in) float32 database vectors -> (n, d_out) float32 through every stage's ``apply``."""
        for stage in self.stages:
            x = stage.apply(x)
        return x

    def apply_query(self, x: np.ndarray) -> np.ndarray:
        """(n, d_in) float32 queries -> (n, d_out) float32 through every stage's ``apply_query``."""
        for stage in self.stages:
            x = stage.apply_query(x)
        return x

    def codec_name(self) -> str | None:
        """The last stage's codec (the codes are made from its output), if it trains one."""
        return self.stages[-1].codec_name()

    def fit(self, xt: np.ndarray, *, progress: Any = None, run: Any = None) -> "ChainTransform":
        raise TypeError("a chain is built from fitted stages (vecspread train --after), not fitted")

    def get_params(self) -> dict[str, Any]:
        return {"stages": [{"type": s.name, "config": s.get_config()} for s in self.stages]}

    def get_weights(self) -> dict[str, np.ndarray]:
        return {f"{i}/{name}": arr for i, s in enumerate(self.stages) for name, arr in s.get_weights().items()}

    @classmethod
    def from_state(cls, config: dict[str, Any], weights: dict[str, np.ndarray]) -> "ChainTransform":
        from vecspread.transforms import STORED_TYPES, transform_class

        stages: list[Transform] = []
        for i, spec in enumerate(config["stages"]):
            if spec["type"] not in STORED_TYPES or spec["type"] == CHAIN.name:
                raise ValueError(f"chain stage {i}: unknown transform type {spec['type']!r}")
            prefix = f"{i}/"
            own = {k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix)}
            stages.append(transform_class(spec["type"]).from_state(spec["config"], own))
        chain = cls(stages)
        if (chain.d_in, chain.d_out) != (int(config["d_in"]), int(config["d_out"])):
            raise ValueError("chain dimensions do not match its stages")
        return chain
