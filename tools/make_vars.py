"""Warn about Make variables given on the command line that the Makefile does not read.

`make train-gan-mnist EPOCH=1` would otherwise start the full default run without a word.
Usage (from the Makefile): python3 tools/make_vars.py "KNOWN VARS" NAME=VALUE ...
Standard library only: it runs before the virtualenv exists.
"""

from __future__ import annotations

import difflib
import sys

# Spellings too far from the right name for difflib alone.
ALIASES = {
    "DATADIR": "DATA_DIR",
    "DATA": "DATA_DIR",
    "OUT": "RUN",
    "RUN_DIR": "RUN",
    "RUNDIR": "RUN",
    "OUTPUT": "RUN",
    "ARG": "ARGS",
    "FLAGS": "ARGS",
    "N_EPOCHS": "EPOCHS",
}


def suggestion(name: str, known: list[str]) -> str | None:
    """The known variable `name` was most likely meant to be, if any."""
    upper = name.upper()
    if upper in known:
        return upper
    if ALIASES.get(upper) in known:
        return ALIASES[upper]
    close = difflib.get_close_matches(upper, known, n=1, cutoff=0.6)
    return close[0] if close else None


def warnings(known: list[str], given: list[str]) -> list[str]:
    lines = []
    for item in given:
        name, _, value = item.partition("=")
        if name in known:
            continue
        right = suggestion(name, known)
        hint = f"; did you mean {right}={value}?" if right else f" (it reads {', '.join(known)})"
        lines.append(
            f"warning: this Makefile has no variable {name}, so {name}={value} is ignored{hint}"
        )
    return lines


if __name__ == "__main__":
    for line in warnings(sys.argv[1].split(), sys.argv[2:]):
        print(line, file=sys.stderr)
