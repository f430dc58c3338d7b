"""How library code reports progress without knowing about terminals.

Stages and training loops take a ``progress`` object with this small protocol; the CLI passes one
that draws a rich bar on a terminal, library users get :class:`LogProgress` (the ``logging`` module).
"""

from __future__ import annotations

import logging
from typing import Protocol

logger = logging.getLogger("vecspread")


class Progress(Protocol):
    def log(self, message: str) -> None:
        """One line of information (goes to stderr in the CLI)."""

    def start(self, total: int, description: str) -> None:
        """Begin a unit of work of ``total`` steps (rows, epochs...)."""

    def advance(self, n: int = 1) -> None:
        """``n`` more steps done."""

    def finish(self) -> None:
        """The unit of work started last is complete."""


class LogProgress:
    """Progress that only logs lines through ``logging`` (no bars)."""

    def log(self, message: str) -> None:
        logger.info(message)

    def start(self, total: int, description: str) -> None:
        pass

    def advance(self, n: int = 1) -> None:
        pass

    def finish(self) -> None:
        pass


class _Partial:
    """A caller's progress object that implements only some of the protocol (``log`` at least)."""

    def __init__(self, progress: object) -> None:
        self._p = progress

    def log(self, message: str) -> None:
        self._p.log(message)  # type: ignore[attr-defined]

    def start(self, total: int, description: str) -> None:
        fn = getattr(self._p, "start", None)
        if callable(fn):
            fn(total, description)

    def advance(self, n: int = 1) -> None:
        fn = getattr(self._p, "advance", None)
        if callable(fn) and n > 0:
            fn(n)

    def finish(self) -> None:
        fn = getattr(self._p, "finish", None)
        if callable(fn):
            fn()


def as_progress(progress: object | None) -> Progress:
    """A full :class:`Progress` from what a caller gave: None logs through ``logging``; an object with only
    some of the methods gets the others as no-ops."""
    if progress is None:
        return LogProgress()
    if all(callable(getattr(progress, m, None)) for m in ("log", "start", "advance", "finish")):
        return progress  # type: ignore[return-value]
    return _Partial(progress)
