"""Errors that mean "the user asked for something we cannot do", shown as one line."""
from __future__ import annotations


class UserError(Exception):
    """A problem with the user's input (paths, flags, data); the CLIs print it and exit 2."""


class NonFiniteLoss(RuntimeError):
    """Training produced NaN or Inf; the run stops and the last checkpoint stays as it was."""


def one_line_warnings() -> None:
    """Show warnings as `warning: message` in the CLIs: a user reading a skipped-files notice
    needs the message, not the library line that raised it."""
    import warnings

    warnings.formatwarning = lambda message, category, *args, **kwargs: f"warning: {message}\n"
