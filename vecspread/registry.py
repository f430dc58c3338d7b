"""Lazy "module:Class" lookups for the method and codec registries (importing a registry stays cheap)."""

from __future__ import annotations

import importlib
from typing import Any


def load(spec: str) -> Any:
    """The object named by ``"package.module:Name"``, importing its module on first use."""
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)
