"""Command-line options generated from the parameter declarations (``vecspread.params``).

``train`` offers every method's hyper-parameters, ``encode`` every codec's, ``search`` every scanner's:
one option per name, whatever the number of classes that declare it. Its help says which classes take
it and their defaults; its type is the declarations' (they must agree). A command receives the options
the user gave as one dict (``options``: name -> value, None when not given), which the stage hands to
the registries; they refuse an option the chosen class does not take.

Only the standard library, typer and the light declarations are imported: TAB completion runs this.
"""

from __future__ import annotations

import enum
import functools
import inspect
from typing import Any, Callable, Optional, Sequence

import typer

from vecspread.params import Param, ParamSet

Owners = Sequence[tuple[str, ParamSet]]


def method_options() -> Owners:
    """``train``: every method's options (its transform's, its codec's, its run settings)."""
    from vecspread.transforms import REGISTRY, method_params

    return [(s.name, method_params(s)) for s in REGISTRY]


def codec_options() -> Owners:
    """``encode``: every codec's options."""
    from vecspread.codecs import REGISTRY

    return [(s.name, s.params) for s in REGISTRY]


def scanner_options() -> Owners:
    """``search``: the options of the scanners chosen by them (hash tables)."""
    from vecspread.scanners import option_params

    return option_params()


def with_options(owners: Callable[[], Owners], *, after: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Give a Typer command the options declared by ``owners()`` ((owner name, ParamSet) pairs).

    They are listed after the command's own parameter ``after`` and reach it as ``options``.
    """

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        sig = inspect.signature(func, eval_str=True)
        own = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for name, p in sig.parameters.items() if name != "options"]
        generated = build_options(owners())
        cut = next(i for i, p in enumerate(own) if p.name == after) + 1
        params = own[:cut] + generated + own[cut:]
        names = [p.name for p in generated]

        @functools.wraps(func)
        def command(**kwargs: Any) -> Any:
            options = {n: _plain(kwargs.pop(n)) for n in names}
            return func(**kwargs, options=options)

        command.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in params}
        return command

    return decorate


def build_options(owners: Owners) -> list[inspect.Parameter]:
    """One keyword-only Typer option per parameter name declared by any of ``owners``."""
    by_name: dict[str, list[tuple[str, Param]]] = {}
    for owner, params in owners:
        for p in params:
            by_name.setdefault(p.name, []).append((owner, p))
    single = len(owners) == 1
    out = []
    for name, decls in by_name.items():
        first = decls[0][1]
        kinds = {p.cli_type for _, p in decls}
        if len(kinds) > 1 or len({p.flag for _, p in decls}) > 1:
            raise TypeError(f"parameter {name!r} is declared with different types or flags: {decls}")
        panels = {p.panel for _, p in decls}
        choices = {p.choices for _, p in decls}
        annotation: Any = Optional[first.cli_type]
        if len(choices) == 1 and first.choices is not None:
            annotation = Optional[enum.Enum(_camel(name), {c: c for c in first.choices}, type=str)]  # type: ignore[misc]
        decl = f"{first.flag}/--no-{first.flag[2:]}" if first.kind is bool and first.negatable else first.flag
        option = typer.Option(None, decl, help=compose_help(decls, single), show_default=False,
                              rich_help_panel=panels.pop() if len(panels) == 1 else None)
        out.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=annotation))
    return out


def compose_help(decls: list[tuple[str, Param]], single: bool) -> str:
    """Help of one option from its declarations: which owners take it, what it means to each, the defaults.

    Owners with the same help share one clause; within it, defaults are listed per owner when they differ.
    """
    clauses: dict[str, dict[str | None, list[str]]] = {}
    for owner, p in decls:
        clauses.setdefault(p.help.rstrip("."), {}).setdefault(p.describe_default(), []).append(owner)
    parts = []
    for text, defaults in clauses.items():
        owners = [o for names in defaults.values() for o in names]
        shown = {d: names for d, names in defaults.items() if d is not None}
        if len(defaults) == 1 and shown:
            text += f" (default: {next(iter(shown))})"
        elif shown:
            text += " (default: " + "; ".join(f"{', '.join(names)}: {d}" for d, names in shown.items()) + ")"
        parts.append(text if single else f"{', '.join(owners)}: {text}")
    return "; ".join(parts) + "."


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, enum.Enum) else value


def _camel(name: str) -> str:
    return "".join(w.capitalize() for w in name.split("_"))
