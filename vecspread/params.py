"""Hyper-parameters, each declared once: name, type, default, help and bounds.

A class that takes hyper-parameters (a transform, a codec, a scanner) lists them in a :class:`ParamSet`
beside it. From that one declaration come the class's keyword arguments and their checks
(:class:`Configurable`), ``get_params()`` / ``set_params()``, and the command line's options with their
help (``vecspread.cli_options``), hence the man pages and the shell completions.

This module imports nothing but the standard library: the command line reads every declaration when it
starts, TAB completion included.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import operator
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Iterator, Mapping

from vecspread.errors import ConfigError
from vecspread.limits import MAX_SEED


@dataclass(frozen=True)
class Param:
    """One hyper-parameter.

    ``kind`` is the Python type of a value: int, float, bool or str, checked here; values of another
    shape (a list of floats, an int or a pair) have a ``convert`` function that takes the command line's
    text or a Python value and returns the value or raises ConfigError. ``default`` None means
    "not set": the class derives a value (say so in ``default_text``) or the parameter is ``required``.
    Bounds: ``ge``/``gt``/``le``/``lt`` (inclusive / exclusive), ``choices``, ``multiple_of``.
    """

    name: str
    kind: type
    default: Any = None
    help: str = ""
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    choices: tuple[str, ...] | None = None
    multiple_of: int | None = None
    required: bool = False
    #: how the default reads in help text when it is not the literal value (e.g. "per dout, paper App. A")
    default_text: str | None = None
    #: text or value -> checked value, for values that are not a plain int/float/bool/str
    convert: Callable[[Any], Any] | None = None
    #: bool flags: also offer --no-NAME
    negatable: bool = False
    #: the command line's option name (default: --NAME with dashes)
    flag_name: str | None = None
    #: the help section the command line lists the option under (default: its ParamSet's)
    panel: str | None = None

    @property
    def flag(self) -> str:
        return self.flag_name or "--" + self.name.replace("_", "-")

    @property
    def cli_type(self) -> type:
        """The type the command line parses: the value's own, or text for a ``convert`` parameter."""
        return self.kind if self.convert is None else str

    def check(self, value: Any, owner: str) -> Any:
        """``value`` as this parameter's type, or ConfigError naming the flag, the bound and ``owner``."""
        if self.convert is not None:
            return self.convert(value)
        value = _coerce(self, value)
        if self.choices is not None and value not in self.choices:
            raise ConfigError(f"{self.flag} {value!r} is not one of {', '.join(self.choices)} ({owner})")
        if self.kind in (int, float):
            for bound, ok, word in ((self.ge, operator.ge, "at least"), (self.gt, operator.gt, "greater than"),
                                    (self.le, operator.le, "at most"), (self.lt, operator.lt, "less than")):
                if bound is not None and not ok(value, bound):
                    raise ConfigError(f"{self.flag} must be {word} {_num(bound)}, got {_num(value)} ({owner})")
            if self.multiple_of and value % self.multiple_of:
                raise ConfigError(f"{self.flag} must be a multiple of {self.multiple_of}, got {value} ({owner})")
        return value

    def describe_default(self) -> str | None:
        """The default as help text shows it, or None when there is nothing to show."""
        if self.default_text is not None:
            return self.default_text
        if self.default is None:
            return None
        if isinstance(self.default, bool):
            return "on" if self.default else "off"
        if isinstance(self.default, (tuple, list)):
            return ",".join(_num(v) for v in self.default)
        return _num(self.default) if isinstance(self.default, (int, float)) else str(self.default)

    def to_json(self, value: Any) -> Any:
        """A JSON-able copy of a value (tuples become lists)."""
        if isinstance(value, tuple):
            return [self.to_json(v) for v in value]
        return value


def _coerce(p: Param, value: Any) -> Any:
    if p.kind is bool:
        if isinstance(value, bool) or type(value).__name__ == "bool_":
            return bool(value)
        raise ConfigError(f"{p.flag} must be true or false, got {value!r}")
    if p.kind is int:
        if isinstance(value, bool):
            raise ConfigError(f"{p.flag} must be an integer, got {value!r}")
        try:
            return operator.index(value)
        except TypeError:
            raise ConfigError(f"{p.flag} must be an integer, got {value!r}") from None
    if p.kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) and not hasattr(value, "__float__"):
            raise ConfigError(f"{p.flag} must be a number, got {value!r}")
        value = float(value)
        if not math.isfinite(value):
            raise ConfigError(f"{p.flag} must be a finite number, got {value!r}")
        return value
    if p.kind is str:
        if not isinstance(value, str):
            raise ConfigError(f"{p.flag} must be text, got {value!r}")
        return value
    raise TypeError(f"parameter {p.name}: unsupported kind {p.kind!r}")


def _num(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


class ParamSet:
    """An ordered set of :class:`Param`, the hyper-parameters of one class."""

    def __init__(self, *params: Param, panel: str | None = None) -> None:
        """``panel``: the help section of the parameters that do not name their own."""
        self._params = {p.name: p if p.panel or not panel else dataclasses.replace(p, panel=panel) for p in params}
        if len(self._params) != len(params):
            raise ValueError("a parameter is declared twice")

    def __iter__(self) -> Iterator[Param]:
        return iter(self._params.values())

    def __len__(self) -> int:
        return len(self._params)

    def __contains__(self, name: object) -> bool:
        return name in self._params

    def __getitem__(self, name: str) -> Param:
        return self._params[name]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._params)

    def __add__(self, other: "ParamSet") -> "ParamSet":
        return ParamSet(*self, *other)

    def with_defaults(self, **defaults: Any) -> "ParamSet":
        """The same parameters with other defaults (a family sharing parameters, e.g. the neural methods)."""
        unknown = set(defaults) - set(self._params)
        if unknown:
            raise ValueError(f"no such parameters: {sorted(unknown)}")
        return ParamSet(*(dataclasses.replace(p, default=defaults[p.name]) if p.name in defaults else p
                          for p in self))

    def replace(self, name: str, **changes: Any) -> "ParamSet":
        """The same parameters, ``name`` changed (e.g. its help for one owner)."""
        return ParamSet(*(dataclasses.replace(p, **changes) if p.name == name else p for p in self))

    def resolve(self, given: Mapping[str, Any], owner: str) -> dict[str, Any]:
        """Every parameter's value: the given ones checked (None counts as not given), the others' defaults.

        ConfigError for a name this set does not declare (naming the flags it does take) and for a
        required parameter that was not given.
        """
        stray = sorted(k for k, v in given.items() if k not in self._params and v is not None)
        if stray:
            raise ConfigError(not_applicable(stray, self.names, owner))
        out = {}
        for p in self:
            value = given.get(p.name)
            if value is None:
                if p.required:
                    raise ConfigError(f"{owner} needs {p.flag} ({p.help.rstrip('.')})")
                out[p.name] = p.default
            else:
                out[p.name] = p.check(value, owner)
        return out


def not_applicable(names: list[str], accepted: tuple[str, ...], owner: str) -> str:
    """The message for options ``owner`` does not take."""
    flags = ", ".join("--" + s.replace("_", "-") for s in names)
    takes = ", ".join("--" + a.replace("_", "-") for a in accepted) or "no options"
    return f"{flags} does not apply to {owner} (it takes: {takes})"


class Configurable:
    """Keyword-only hyper-parameters from the class's :class:`ParamSet` (scikit-learn's conventions).

    ``__init__`` only stores the parameters (checked: unknown names and out-of-bounds values are a
    ConfigError naming the flag), learned state ends with ``_``. Subclasses add cross-parameter rules
    in ``_check_params``.
    """

    params: ClassVar[ParamSet] = ParamSet()
    #: "--method", "--codec": how the command line names this kind of class in messages
    kind: ClassVar[str] = ""
    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""

    def __init__(self, **kwargs: Any) -> None:
        for key, value in self.params.resolve(kwargs, self.owner()).items():
            setattr(self, key, value)
        self._check_params()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        spec = cls.__dict__.get("spec")
        if spec is not None:  # a registered class: its name, summary and parameters are its spec's
            cls.name, cls.summary, cls.params = spec.name, spec.summary, spec.params
        # help() and IDEs show the declared keyword arguments
        cls.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
            [inspect.Parameter(p.name, inspect.Parameter.KEYWORD_ONLY, default=p.default) for p in cls.params])

    @classmethod
    def owner(cls) -> str:
        return f"{cls.kind} {cls.name}".strip()

    def _check_params(self) -> None:
        """Rules between parameters; raise ConfigError."""

    def get_params(self) -> dict[str, Any]:
        """The hyper-parameters, JSON-able."""
        return {p.name: p.to_json(getattr(self, p.name)) for p in self.params}

    def set_params(self, **params: Any) -> "Configurable":
        """Change hyper-parameters (checked as in ``__init__``); returns self."""
        self.__init__(**{**self.get_params(), **params})  # type: ignore[misc]
        return self

    def __repr__(self) -> str:
        changed = {p.name: getattr(self, p.name) for p in self.params if getattr(self, p.name) != p.default}
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in changed.items())})"


# ---------------------------------------------------------------------------------------------
# Parsers for command-line values that are not one number


def positive_floats(text: str, flag: str, example: str) -> tuple[float, ...]:
    """'0.1,0.1,0.05' -> (0.1, 0.1, 0.05); ConfigError unless every item is a positive number."""
    try:
        values = tuple(float(t) for t in text.split(",") if t.strip())
    except ValueError:
        values = ()
    if not values or any(not (v > 0 and math.isfinite(v)) for v in values):
        raise ConfigError(f"{flag} {text!r}: expected comma-separated positive numbers, e.g. {example}")
    return values


def positive_ints(text: str, flag: str, example: str = "1,10,100") -> list[int]:
    """'1,10,100' -> [1, 10, 100]; ConfigError unless every item is a positive integer."""
    try:
        values = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        values = []
    if not values or any(v <= 0 for v in values):
        raise ConfigError(f"{flag} {text!r}: expected comma-separated positive integers, e.g. {example}")
    return values


def seed_param(default: int = 0, help: str = "Random seed", **kwargs: Any) -> Param:
    """A ``seed`` parameter: an integer in 0 .. 2^32 - 1 (numpy and torch take 32-bit seeds)."""
    return Param(kwargs.pop("name", "seed"), int, default, help, ge=0, le=MAX_SEED, **kwargs)
