"""Registries of named classes (methods, codecs, scanners): light specs, classes imported on first use.

A :class:`Spec` says what a registered class is called, where it lives ("package.module:Class") and
which hyper-parameters it takes; it is importable without numpy, torch or faiss, so that the command
line can list names and build its options at start-up. The class itself is loaded only when used.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Iterator

from vecspread.errors import ConfigError
from vecspread.params import ParamSet, not_applicable


@dataclass(frozen=True)
class Spec:
    """A registered class: its name, "module:Class", hyper-parameters and a one-line summary.

    Methods also name the codec they train with (``codec``: ``encode`` then needs no ``--codec``) and
    may stand for another transform (``transform``: ``--method pq`` is the identity + the pq codec).
    """

    name: str
    target: str
    params: ParamSet = field(default_factory=ParamSet)
    summary: str = ""
    codec: str | None = None
    #: the registered transform this method stands for, when it is a shorthand
    transform: str | None = None
    #: run-time settings (``vecspread.runtime.RUN_PARAMS``) this class takes in ``fit``
    run_settings: tuple[str, ...] = ()
    #: methods: the dataset distances they serve (a dot dataset needs a MIPS lift)
    distances: tuple[str, ...] = ("euclidean", "angular")

    def load(self) -> type:
        """The class, importing its module on first use."""
        module, _, name = self.target.partition(":")
        return getattr(importlib.import_module(module), name)


class Registry:
    """Specs by name, in registration order. ``kind`` names them in messages ("codec"), ``flag`` is the
    option that chooses one ("--codec"; messages then say "--codec pq")."""

    def __init__(self, kind: str, flag: str, specs: list[Spec]) -> None:
        self.kind = kind
        self.flag = flag
        self._specs = {s.name: s for s in specs}
        if len(self._specs) != len(specs):
            raise ValueError(f"two {kind}s share a name")

    @classmethod
    def of_packages(cls, kind: str, flag: str, packages: list[str]) -> "Registry":
        """The specs declared by light packages (their ``SPECS`` tuple, or their ``SPEC``), in order."""
        specs: list[Spec] = []
        for name in packages:
            module = importlib.import_module(name)
            specs += list(getattr(module, "SPECS", None) or [module.SPEC])
        return cls(kind, flag, specs)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._specs)

    def __iter__(self) -> Iterator[Spec]:
        return iter(self._specs.values())

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def __getitem__(self, name: str) -> Spec:
        """The spec called ``name``; ConfigError naming the choices when there is none."""
        try:
            return self._specs[name]
        except KeyError:
            raise ConfigError(f"unknown {self.kind} {name!r}; choose one of {', '.join(self._specs)}") from None

    def load(self, name: str) -> type:
        return self[name].load()

    def create(self, name: str, options: dict[str, Any], *args: Any) -> Any:
        """``Class(*args, **options)`` for the options the user set (None = not given); an option the class
        does not take is refused, naming the flag and the class."""
        spec = self[name]
        given = {k: v for k, v in options.items() if v is not None}
        stray = sorted(set(given) - set(spec.params.names))
        if stray:
            raise ConfigError(not_applicable(stray, spec.params.names, f"{self.flag} {name}"))
        return spec.load()(*args, **given)
