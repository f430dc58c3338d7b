"""The console script's first code: SIGINT and SIGTERM are handled from here on, before the slow imports.

Python turns SIGINT into ``KeyboardInterrupt`` only once its own start-up is done, and SIGTERM kills the
process with no word and no clean-up. Here both become :class:`~vecspread.errors.Interrupted` (a
``KeyboardInterrupt``), so every stage cleans up its partial files the same way for either, and the edge
reports one line with exit code 130 (SIGINT) or 143 (SIGTERM). A signal that arrives while the command-line
modules are still being imported (nothing has been written yet) ends the process at once with that line.

Not covered: a signal in the first milliseconds, before the interpreter runs this module; the process then
dies of the signal itself (a shell reports it as 130 or 143 too).
"""

from __future__ import annotations

import os
import signal
import sys

from vecspread.errors import Interrupted

HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM)
#: the signals received so far, in order (the edge reads them when Typer reports an interruption as 130)
received: list[int] = []


def main() -> None:
    """Console-script entry point (``vecspread`` and ``python -m vecspread``)."""
    install_signal_handlers()
    try:
        from vecspread.cli import main as cli_main
    except Interrupted as e:  # during the imports: nothing was started, so nothing to clean
        _exit_now(e)
    except KeyboardInterrupt:
        _exit_now(Interrupted(signal.SIGINT))
    cli_main()


def install_signal_handlers() -> None:
    """SIGINT and SIGTERM raise :class:`Interrupted` in the main thread (unless they are ignored)."""
    for signum in HANDLED_SIGNALS:
        if signal.getsignal(signum) is not signal.SIG_IGN:  # `nohup` and the like ignore some on purpose
            signal.signal(signum, _raise_interrupted)


def _raise_interrupted(signum: int, frame: object) -> None:
    received.append(signum)
    raise Interrupted(signum)


def last_interruption() -> Interrupted:
    """The last signal received as an :class:`Interrupted` (SIGINT when none was: a plain Ctrl-C)."""
    return Interrupted(received[-1] if received else signal.SIGINT)


def _exit_now(e: Interrupted) -> None:
    try:
        sys.stderr.write(f"vecspread: error: {e.message()}\n")  # as Console.error writes it
        sys.stderr.flush()
    finally:
        os._exit(e.exit_code)
