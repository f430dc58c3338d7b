"""Lazy "module:Class" lookups for the method and codec registries (importing a registry stays cheap)."""

from __future__ import annotations

import importlib
import inspect
from typing import Any


def load(spec: str) -> Any:
    """The object named by ``"package.module:Name"``, importing its module on first use."""
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


def instantiate(cls: type, options: dict[str, Any], owner: str) -> Any:
    """``cls(**options)`` with the options the user set (None = not given).

    An option ``cls`` does not take is refused with a ConfigError naming the flag and ``owner``
    (e.g. "--method pca"), rather than silently ignored.
    """
    from vecspread.errors import ConfigError

    accepted = set(inspect.signature(cls.__init__).parameters) - {"self"}
    given = {k: v for k, v in options.items() if v is not None}
    stray = sorted(set(given) - accepted)
    if stray:
        flags = ", ".join("--" + s.replace("_", "-") for s in stray)
        takes = ", ".join("--" + a.replace("_", "-") for a in sorted(accepted)) or "no options"
        raise ConfigError(f"{flags} does not apply to {owner} (it takes: {takes})")
    return cls(**given)
