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
