"""Errors a user can cause. The CLI turns each into one line on stderr and an exit code."""

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 3  # a bug in vecspread, not the user's fault
EXIT_INTERRUPTED = 130  # SIGINT (Ctrl-C): 128 + 2
EXIT_TERMINATED = 143  # SIGTERM: 128 + 15


class VecspreadError(Exception):
    """A problem with the user's input or request: reported as one line, exit code 2."""

    exit_code = EXIT_BAD_INPUT


class InputError(VecspreadError):
    """An input file is missing, unreadable, of the wrong kind or holds bad values."""


class ConfigError(VecspreadError):
    """A combination of options that cannot work (e.g. a lattice the codec cannot store)."""


class LineageError(VecspreadError):
    """Two inputs that do not derive from each other (codes from another model, ...)."""


class OutputError(VecspreadError):
    """An output could not be written (disk full, file size limit, I/O error): nothing was left behind."""


class ClusterError(VecspreadError):
    """The cluster could not finish the work (a shard's workers kept dying, the scheduler went away):
    nothing was written."""


class CheckFailed(VecspreadError):
    """A requested check (e.g. ``eval --min-recall``) was not met: exit code 1."""

    exit_code = EXIT_CHECK_FAILED


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived (raised by the handlers of :mod:`vecspread.entry`); exit code 128 + signal.

    A ``KeyboardInterrupt``, so that whatever cleans up after Ctrl-C cleans up after SIGTERM alike.
    """

    def __init__(self, signum: int = 2) -> None:
        super().__init__(signum)
        self.signum = int(signum)
        self.exit_code = 128 + self.signum

    def message(self, detail: str = "") -> str:
        """``'interrupted (SIGINT)'`` or ``'terminated (SIGTERM)'``, then ``detail``."""
        what = "terminated (SIGTERM)" if self.exit_code == EXIT_TERMINATED else "interrupted (SIGINT)"
        return f"{what}{detail}"


def interruption(e: KeyboardInterrupt) -> Interrupted:
    """``e`` as an :class:`Interrupted` (a plain ``KeyboardInterrupt`` is a SIGINT)."""
    return e if isinstance(e, Interrupted) else Interrupted(2)
