"""Errors a user can cause. The CLI turns each into one line on stderr and an exit code."""

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 3  # a bug in vecspread, not the user's fault


class VecspreadError(Exception):
    """A problem with the user's input or request: reported as one line, exit code 2."""

    exit_code = EXIT_BAD_INPUT


class InputError(VecspreadError):
    """An input file is missing, unreadable, of the wrong kind or holds bad values."""


class ConfigError(VecspreadError):
    """A combination of options that cannot work (e.g. a lattice the codec cannot store)."""


class LineageError(VecspreadError):
    """Two inputs that do not derive from each other (codes from another model, ...)."""


class CheckFailed(VecspreadError):
    """A requested check (e.g. ``eval --min-recall``) was not met: exit code 1."""

    exit_code = EXIT_CHECK_FAILED
