"""Errors that mean "the user asked for something we cannot do", shown as one line."""
from __future__ import annotations


class UserError(Exception):
    """A problem with the user's input (paths, flags, data); the CLIs print it and exit 2."""


class NonFiniteLoss(RuntimeError):
    """Training produced NaN or Inf; the run stops and the last checkpoint stays as it was."""
