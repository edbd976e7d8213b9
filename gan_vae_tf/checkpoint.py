"""Atomic per-epoch checkpoints: everything needed to continue a run as if it never stopped.

A checkpoint holds the networks, every optimizer's state, the random-generator states (the
models' SeedGenerators), the fixed sample inputs and the number of finished epochs. It is
written to `checkpoint.tmp/`, then swapped into place by renames, so a run killed at any moment
leaves either the previous or the new checkpoint whole; `history.csv` is cut back to the
checkpoint's epoch on resume, so no epoch is lost or repeated.
"""
from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from gan_vae_tf.errors import UserError

NAME = "checkpoint"
log = logging.getLogger(__name__)


def _rng_states(model: keras.Model) -> list:
    """The state variable of every SeedGenerator in the model (its own, the sampler's, every
    Dropout's): restoring them continues the random streams instead of replaying them."""
    states = []
    for layer in model._flatten_layers(include_self=True):
        states += [g.state for g in getattr(layer, "_seed_generators", [])]
    return states


class RunState:
    """The trackable bundle that goes into a checkpoint."""

    def __init__(self, model: keras.Model, fixed_inputs: dict[str, np.ndarray]):
        self.model = model
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        self.fixed = {k: tf.Variable(v, trainable=False, name=k) for k, v in fixed_inputs.items()}
        self.rng = _rng_states(model)
        core = {"model": model, "epoch": self.epoch, **model.optimizers(),
                **{f"fixed_{k}": v for k, v in self.fixed.items()}}
        rng = {f"rng_{i}": v for i, v in enumerate(self.rng)}
        self._ckpt = tf.train.Checkpoint(**core, **rng)
        self._core = tf.train.Checkpoint(**core)
        self._rng = tf.train.Checkpoint(**rng)

    def save(self, run_dir: Path, epoch: int) -> Path:
        self.epoch.assign(epoch)
        final, tmp, old = (run_dir / NAME, run_dir / f"{NAME}.tmp", run_dir / f"{NAME}.old")
        shutil.rmtree(tmp, ignore_errors=True)
        self._ckpt.write(str(tmp / "state"))
        for f in tmp.iterdir():
            with f.open("rb") as handle:
                os.fsync(handle.fileno())
        if final.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
        return final

    def restore(self, run_dir: Path) -> int:
        """Load the newest whole checkpoint; returns the number of finished epochs."""
        folder = latest(run_dir)
        if folder is None:
            raise UserError(f"{run_dir} has no checkpoint to resume from")
        try:
            self._core.read(str(folder / "state")).expect_partial().assert_existing_objects_matched()
        except Exception as e:
            raise UserError(f"checkpoint in {folder} is corrupt or does not match this run's "
                            f"config ({type(e).__name__}); start a new run with --out") from None
        try:
            self._rng.read(str(folder / "state")).expect_partial().assert_existing_objects_matched()
        except AssertionError:
            log.warning("checkpoint in %s has no random-generator state (written by an older "
                        "version): random streams restart from the seed", folder)
        return int(self.epoch.numpy())


def latest(run_dir: Path) -> Path | None:
    """`checkpoint/`, or `checkpoint.old/` when a kill fell between the two renames."""
    for name in (NAME, f"{NAME}.old"):
        folder = run_dir / name
        if (folder / "state.index").is_file():
            return folder
    return None


class Checkpoint(keras.callbacks.Callback):
    """Saves a RunState after every epoch, after the epoch's other callbacks have written."""

    def __init__(self, run_dir: str | os.PathLike, state: RunState):
        super().__init__()
        self.run_dir = Path(run_dir)
        self.state = state
        self.finished = 0

    def on_epoch_end(self, epoch, logs=None):
        self.finished = epoch + 1
        self.state.save(self.run_dir, self.finished)
