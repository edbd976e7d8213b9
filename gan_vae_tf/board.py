"""Serve every run's TensorBoard logs: `python -m gan_vae_tf.board [RUNS_DIR] [TensorBoard flags]`.

Each run writes RUN_DIR/tensorboard (scalars and the sample grid per epoch, see
`callbacks.TensorBoardLog`); pointing TensorBoard at the folder of runs shows them side by side.
This is TensorBoard itself, started after `console.setup()` so that it opens without
TensorFlow's start-up chatter.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from gan_vae_tf import console, errors
from gan_vae_tf.errors import UserError

DEFAULT_RUNS = Path("experiments") / "runs"


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    logdir = argv.pop(0) if argv and not argv[0].startswith("-") else str(DEFAULT_RUNS)
    if not Path(logdir).is_dir():
        return errors.report(
            UserError(
                f"{logdir} is not a folder of runs (train one first, e.g. make train-gan-mnist)"
            )
        )
    console.setup()
    try:
        from tensorboard import main as tensorboard_main
    except ImportError:
        return errors.report(UserError("TensorBoard is not installed: pip install tensorboard"))
    sys.argv = [sys.argv[0], "--logdir", logdir, *argv]
    tensorboard_main.run_main()
    return 0


if __name__ == "__main__":
    sys.exit(main())
