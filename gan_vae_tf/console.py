"""What the command-line tools print: the project's own lines, real warnings and errors, and
none of TensorFlow's start-up chatter.

Importing TensorFlow writes lines to file descriptor 2 from C++ before its log settings apply
(`absl::InitializeLog`, `cudart_stub`, oneDNN notes), so `TF_CPP_MIN_LOG_LEVEL` alone cannot
hide them. `setup()` imports TensorFlow once with fd 2 pointed at a temporary file and then
replays every captured line that is not known chatter: an import that fails still shows its
real error.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import tempfile

from gan_vae_tf.errors import one_line_warnings

LOG_LEVEL_ENV = "TF_CPP_MIN_LOG_LEVEL"

#: How training shows its progress: Keras' bar (on a terminal), a line per epoch, a line every
#: 30 s with images/s and the epoch's ETA (`callbacks.ProgressLines`: logs, make, pipes), none.
PROGRESS = ("bar", "epoch", "lines", "none")

# Lines TensorFlow prints on every start on a machine without a GPU; none is the user's problem.
_CHATTER = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|[IWE]\d{4} [\d:.]+\s+\d+ (port|cudart_stub|cpu_feature_guard|cuda_platform|cuda_executor"
    r"|cuda_dnn|cuda_fft|cuda_blas|cuda_diagnostics)\.cc:\d+\] .*"
    r"|To enable the following instructions: .* rebuild TensorFlow with the appropriate compiler flags\.)$"
)


def is_chatter(line: str) -> bool:
    """True for one of TensorFlow's known start-up lines (without its line break)."""
    return bool(_CHATTER.match(line.rstrip("\r\n")))


def without_chatter(text: str) -> str:
    """`text` with TensorFlow's known start-up lines removed and every other line kept."""
    return "".join(line for line in text.splitlines(keepends=True) if not is_chatter(line))


def import_tensorflow_quietly() -> None:
    """Import TensorFlow (and Keras) with its start-up chatter removed from stderr.

    Does nothing if TensorFlow is already imported. With `TF_CPP_MIN_LOG_LEVEL=0` set by the
    user, nothing is filtered: they asked to see everything.
    """
    if "tensorflow" in sys.modules:
        return
    os.environ.setdefault(LOG_LEVEL_ENV, "3")
    if os.environ[LOG_LEVEL_ENV] == "0":
        import keras  # noqa: F401
        import tensorflow  # noqa: F401

        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            import keras  # noqa: F401
            import tensorflow  # noqa: F401
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            kept = without_chatter(capture.read().decode(errors="replace"))
            if kept:
                sys.stderr.write(kept)
                sys.stderr.flush()


def setup() -> None:
    """Console set-up shared by every command-line entry point; call it before anything imports
    TensorFlow.

    The project's loggers speak at INFO, every other library's at WARNING (absl's INFO lines,
    e.g. "Sharding callback duration" at each checkpoint, are not for the user), and Python
    warnings print as one `warning: ...` line.
    """
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger("gan_vae_tf").setLevel(logging.INFO)
    one_line_warnings()
    import_tensorflow_quietly()
