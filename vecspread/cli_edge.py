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
import warnings
from pathlib import Path
from typing import Any, Callable, NoReturn, Optional

import typer

from vecspread.console import Console
from vecspread.errors import EXIT_BAD_INPUT, EXIT_INTERNAL, EXIT_INTERRUPTED, ConfigError, VecspreadError, interruption

console = Console()
#: packages a stage imports when it runs, and how to get each
REQUIRED_PACKAGES = {
    "torch": "install the CPU build: pip install torch --index-url https://download.pytorch.org/whl/cpu "
             "(or sh tools/install_torch.sh PYTHON torch==2.13.0)",
    "faiss": "pip install faiss-cpu", "h5py": "pip install h5py", "numpy": "pip install numpy",
    "matplotlib": "pip install 'vecspread[plot]' (or --no-plot)",
}
_resources: contextlib.ExitStack | None = None
_interruption_reported = False


def stage(func: Callable[..., Any]) -> Callable[..., Any]:
    """Run a command body, turning user errors into one line on stderr and an exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        global _resources
        # errors raised where Python cannot propagate them (HDF5 objects freed after a failed write: Cython
        # reports them through sys.excepthook and sys.unraisablehook) would be printed as tracebacks; the
        # stage reports the failure in its one line. Set here, not earlier: Typer sets its own excepthook
        # each time the app is called. run_main puts the previous hooks back.
        sys.unraisablehook, sys.excepthook = _quiet_unraisable, _quiet_excepthook
        try:
            with contextlib.ExitStack() as _resources:
                if not console.verbose:  # library warnings (numpy overflow, torch) would break the one line
                    _resources.enter_context(warnings.catch_warnings())
                    warnings.simplefilter("ignore")
                return func(*args, **kwargs)
        except VecspreadError as e:
            console.error(str(e))
            raise typer.Exit(e.exit_code) from None
        except KeyboardInterrupt as e:
            raise typer.Exit(report_interruption(e, "; no output was written")) from None
        except OSError as e:
            console.error(f"{e.strerror or e} ({e.filename})" if getattr(e, "filename", None) else str(e))
            raise typer.Exit(EXIT_BAD_INPUT) from None
        except MemoryError:
            console.error("out of memory: use a smaller --block-size")
            raise typer.Exit(EXIT_BAD_INPUT) from None
        except Exception as e:
            missing = (getattr(e, "name", None) or "").split(".")[0] if isinstance(e, ImportError) else ""
            if missing in REQUIRED_PACKAGES:
                console.error(f"{missing} is not installed: {REQUIRED_PACKAGES[missing]}")
                raise typer.Exit(EXIT_BAD_INPUT) from None
            if console.verbose:
                raise
            console.error(f"internal error: {type(e).__name__}: {e} (a bug in vecspread: rerun with --verbose "
                          "for the traceback and report it)")
            raise typer.Exit(EXIT_INTERNAL) from None

    return wrapper


def report_interruption(e: KeyboardInterrupt, detail: str = "") -> int:
    """One line for SIGINT or SIGTERM; returns the exit code (130 or 143)."""
    global _interruption_reported
    i = interruption(e)
    if not _interruption_reported:
        console.error(i.message(detail))
        _interruption_reported = True
    return i.exit_code


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


def within(ge: float | None = None, le: float | None = None) -> Callable[..., Any]:
    """A Typer option callback: the value (when given) lies in [ge, le], or one line naming the flag and the
    bound (as the declared hyper-parameters say it, see ``vecspread.params``)."""

    def check(ctx: typer.Context, param: typer.CallbackParam, value: Any) -> Any:
        if value is None or ctx.resilient_parsing:
            return value
        flag = next((o for o in param.opts if o.startswith("--")), param.opts[0])
        text = f"{value:g}" if isinstance(value, float) else str(value)
        if isinstance(value, float) and value != value:
            usage(f"{flag} must be a number, got {text}")
        if ge is not None and value < ge:
            usage(f"{flag} must be at least {ge}, got {text}")
        if le is not None and value > le:
            usage(f"{flag} must be at most {le}, got {text}")
        return value

    return check


def derived(name: str) -> str:
    """An output named after the input (``vecspread.naming``), said on stderr: the user did not choose it."""
    console.log(f"output: {name} (named after the input; -o chooses another)")
    return name


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


def run_main(app: typer.Typer, *, hard_exit: bool = True) -> NoReturn:
    """Console-script entry point: usage errors, like every other error, are one line and exit code 2.

    ``hard_exit``: when an HDF5 output's writes failed (disk full), the process ends at once with its exit
    code (``os._exit``): HDF5 would otherwise retry the writes at interpreter exit and crash.
    """
    from typer._click import exceptions as click_exceptions

    global _interruption_reported
    _interruption_reported = False
    hooks = sys.unraisablehook, sys.excepthook  # `stage` quietens them (see there)
    try:
        code = app(prog_name="vecspread", standalone_mode=False)
        if code == EXIT_INTERRUPTED and not _interruption_reported:
            # Typer turns an interruption outside a stage (while parsing or importing) into a bare 130
            from vecspread.entry import last_interruption

            code = report_interruption(last_interruption())
    except click_exceptions.NoArgsIsHelpError as e:
        e.show()  # `vecspread` alone, or a stage without arguments: the help text
        code = EXIT_BAD_INPUT
    except click_exceptions.UsageError as e:
        hint = f" (see `{e.ctx.command_path} --help`)" if e.ctx is not None else ""
        console.error(e.format_message().replace("Value error, ", "") + hint)  # the validator's own prefix
        code = EXIT_BAD_INPUT
    except click_exceptions.ClickException as e:
        console.error(e.format_message())
        code = EXIT_BAD_INPUT
    except typer.Exit as e:
        code = e.exit_code
    except VecspreadError as e:  # from an option's callback (`within`), before any stage runs
        console.error(str(e))
        code = e.exit_code
    except KeyboardInterrupt as e:
        code = report_interruption(e)
    except BrokenPipeError:  # e.g. `vecspread eval ... --json | head -c 10`: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 0
    finally:
        if not hard_exit:
            sys.unraisablehook, sys.excepthook = hooks
    code = code if isinstance(code, int) else 0
    from vecspread.io.atomic import ABANDONED

    if hard_exit and ABANDONED:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def _quiet_unraisable(info: Any) -> None:
    if console.verbose:
        sys.__unraisablehook__(info)


def _quiet_excepthook(*exc: Any) -> None:
    if console.verbose:
        sys.__excepthook__(*exc)
