"""The edge between the command line and the library: every error becomes one line on stderr and an exit
code, ``-`` paths become spooled files, threads are set before numpy is imported, results are reported.

Library code raises ``VecspreadError`` subclasses and never prints; only this module turns them into
exit codes (README: 0 ok, 1 check failed, 2 bad input or usage, 3 internal error, 130 interrupted).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable, NoReturn, Optional

import typer

from vecspread.console import Console
from vecspread.errors import EXIT_BAD_INPUT, EXIT_INTERNAL, ConfigError, VecspreadError

console = Console()
_resources: contextlib.ExitStack | None = None


def stage(func: Callable[..., Any]) -> Callable[..., Any]:
    """Run a command body, turning user errors into one line on stderr and an exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        global _resources
        try:
            with contextlib.ExitStack() as _resources:
                return func(*args, **kwargs)
        except VecspreadError as e:
            console.error(str(e))
            raise typer.Exit(e.exit_code) from None
        except KeyboardInterrupt:
            console.error("interrupted (no output was written)")
            raise typer.Exit(130) from None
        except OSError as e:
            console.error(f"{e.strerror or e} ({e.filename})" if getattr(e, "filename", None) else str(e))
            raise typer.Exit(EXIT_BAD_INPUT) from None
        except MemoryError:
            console.error("out of memory: use a smaller --block-size")
            raise typer.Exit(EXIT_BAD_INPUT) from None
        except Exception as e:
            if console.verbose:
                raise
            console.error(f"internal error: {type(e).__name__}: {e} (a bug in vecspread: rerun with --verbose "
                          "for the traceback and report it)")
            raise typer.Exit(EXIT_INTERNAL) from None

    return wrapper


def prepare(output: Optional[str], inputs: list[Optional[str]], threads: Optional[int] = None,
            as_json: bool = False) -> tuple[Optional[str], list[Optional[str]]]:
    """Check the output path, set threads, and resolve `-` (stdin/stdout) to temporary files.

    Returns the paths the stage should really use: (output, inputs) in the same order.
    """
    from vecspread.runtime import set_threads

    set_threads(threads)  # first: numpy's BLAS reads its thread count when numpy is imported
    from vecspread.io.artifacts import check_output_path
    from vecspread.io.stdio import STDIO, spooled_stdin, stdout_artifact

    assert _resources is not None, "prepare runs inside a @stage command"
    if sum(i == STDIO for i in inputs) > 1:
        usage("only one input can be '-' (standard input)")
    if output == STDIO and as_json:
        usage("-o - and --json would both write to standard output: drop one")
    if output is not None and output != STDIO:
        check_output_path(output, [i for i in inputs if i and i != STDIO])
    resolved = [_resources.enter_context(spooled_stdin()) if i == STDIO else i for i in inputs]
    if output == STDIO:
        output = _resources.enter_context(stdout_artifact())
    return output, resolved


def run_stage(title: str, output: Optional[str], as_json: bool, fn: Callable[..., dict], *args: Any,
              **kwargs: Any) -> None:
    """``fn(*args, progress=..., **kwargs)`` with a progress display, then its summary reported."""
    with console.progress() as progress:
        summary = fn(*args, progress=progress, **kwargs)
    report({"output": output, **summary}, as_json, title)


def report(summary: dict[str, Any], as_json: bool, title: str) -> None:
    """A stage's summary: one JSON object on stdout, or a short block on stderr."""
    if as_json:
        typer.echo(json.dumps(summary, sort_keys=True, default=str))
    else:
        console.summary(title, summary)


def usage(message: str) -> NoReturn:
    raise ConfigError(message)


def check_new_file(path: Optional[str], flag: str, *others: Optional[str], what: str = "a real file") -> None:
    """``flag PATH`` names a real file (not '-') that is none of ``others``."""
    if path is None:
        return
    if path == "-":
        usage(f"{flag} needs {what}, not '-'")
    for other in others:
        if other not in (None, "-") and Path(path).resolve() == Path(other).resolve():
            usage(f"{flag} {path}: is also another input or output of this stage; use another file")


def check_dir(path: Optional[str]) -> None:
    """A directory to write into: refused when something else has its name."""
    if path is not None and Path(path).exists() and not Path(path).is_dir():
        usage(f"{path}: exists and is not a directory")


def ensure_dir(path: Optional[str]) -> None:
    """:func:`check_dir`, then create it (and its parents) when missing."""
    check_dir(path)
    if path is not None:
        Path(path).mkdir(parents=True, exist_ok=True)


def run_main(app: typer.Typer) -> NoReturn:
    """Console-script entry point: usage errors, like every other error, are one line and exit code 2."""
    from typer._click import exceptions as click_exceptions

    try:
        code = app(prog_name="vecspread", standalone_mode=False)
    except click_exceptions.NoArgsIsHelpError as e:
        e.show()  # `vecspread` alone, or a stage without arguments: the help text
        code = EXIT_BAD_INPUT
    except click_exceptions.UsageError as e:
        hint = f" (see `{e.ctx.command_path} --help`)" if e.ctx is not None else ""
        console.error(e.format_message() + hint)
        code = EXIT_BAD_INPUT
    except click_exceptions.ClickException as e:
        console.error(e.format_message())
        code = EXIT_BAD_INPUT
    except typer.Exit as e:
        code = e.exit_code
    except BrokenPipeError:  # e.g. `vecspread eval ... --json | head -c 10`: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 0
    sys.exit(code if isinstance(code, int) else 0)
