"""Errors that mean "the user asked for something we cannot do", shown as one line."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable
from typing import NoReturn


class UserError(Exception):
    """A problem with the user's input (paths, flags, data); the CLIs print it and exit 2."""


class NonFiniteLoss(RuntimeError):
    """Training produced NaN or Inf; the run stops and the last checkpoint stays as it was."""


def one_line_warnings() -> None:
    """Show warnings as `warning: message` in the CLIs: a user reading a skipped-files notice
    needs the message, not the library line that raised it."""
    warnings.formatwarning = lambda message, category, *args, **kwargs: f"warning: {message}\n"


class StorageError(RuntimeError):
    """A checkpoint or another run file could not be written (full disk, I/O error); the run
    stops at once, the previous checkpoint stays whole, and the CLIs exit 4."""


class ClusterError(RuntimeError):
    """Under multiworker, another worker stopped answering (killed, crashed, unreachable); the
    run stops with the last checkpoint kept, and the CLIs exit 5."""


class Interrupted(Exception):
    """SIGTERM or SIGINT stopped training: at a step boundary after saving a checkpoint
    (`saved`), or at once on a second signal, keeping the last checkpoint. Exit 128 + signum."""

    def __init__(self, signum: int, saved: bool):
        super().__init__(f"signal {signum}")
        self.signum = signum
        self.saved = saved


#: The exit code of each error a command reports as one line (anything else is a bug and keeps
#: its traceback).
EXIT_CODES: dict[type[Exception], int] = {
    UserError: 2,
    NonFiniteLoss: 3,
    StorageError: 4,
    ClusterError: 5,
}
REPORTED = tuple(EXIT_CODES)


def report(error: Exception, advice: str = "") -> int:
    """Print `error: <message>[; <advice>]` on stderr and return the exit code for it: the one
    error path of every command-line tool in the package and its benchmarks."""
    print(f"error: {error}{'; ' + advice if advice else ''}", file=sys.stderr)
    return next(code for kind, code in EXIT_CODES.items() if isinstance(error, kind))


def exit_with(main: Callable[[], int | None]) -> NoReturn:
    """Run a command-line `main` and exit with its code; an error in `EXIT_CODES` it raises
    becomes one `error: ...` line and that code."""
    try:
        code = main()
    except REPORTED as e:
        code = report(e)
    sys.exit(code)
