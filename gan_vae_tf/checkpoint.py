"""Checkpoints that let a stopped run continue exactly as if it had never stopped.

A checkpoint holds the networks, every optimizer's state, the random-generator states (the
models' SeedGenerators), the fixed sample inputs, the epochs' metric trackers and the position
it was taken at: finished epochs, batches of the next epoch already trained, and the seconds
spent on them. It is saved at every epoch end and, inside an epoch, every
`train.checkpoint_every` minutes at the next step boundary.

Each save is written to a temporary folder beside the checkpoint (the folders' names are
`rundir`'s), fsynced, then swapped into place by renames, so a run killed at any moment, or a
disk that fills up while writing, leaves the previous or the new checkpoint whole. Because epoch e's batch order is a function of (seed, e) (`data.EpochOrder`),
a resumed run trains on exactly the batches the stopped one had not reached.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from gan_vae_tf.data import EpochOrder
from gan_vae_tf.distribute import cluster_errors
from gan_vae_tf.errors import Interrupted, StorageError, UserError
from gan_vae_tf.rundir import POSITION, RunDir

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Position:
    """Where in training a checkpoint was taken."""

    epoch: int  # finished epochs
    step: int = 0  # batches of epoch `epoch + 1` already trained
    seconds: float = 0.0  # training seconds those batches took (carried into the epoch's row)
    steps_per_epoch: int | None = field(default=None, compare=False)  # for messages

    def __str__(self) -> str:
        if self.step == 0:
            return f"the end of epoch {self.epoch}" if self.epoch else "the start"
        of = f" of {self.steps_per_epoch}" if self.steps_per_epoch else ""
        return f"epoch {self.epoch + 1}, step {self.step}{of}"


def _rng_states(model: keras.Model) -> list:
    """The state variable of every SeedGenerator in the model (its own, the sampler's, every
    Dropout's): restoring them continues the random streams instead of replaying them."""
    states = []
    for layer in model._flatten_layers(include_self=True):
        states += [g.state for g in getattr(layer, "_seed_generators", [])]
    return states


def _tracker_variables(model: keras.Model) -> dict[str, keras.Variable]:
    """The running totals behind the logged metrics, so an epoch split by a stop still logs the
    mean over all of its steps."""
    return {
        f"{metric.name}_{i}": v for metric in model.metrics for i, v in enumerate(metric.variables)
    }


def _reason(error: Exception) -> str:
    """The operating system's words for a failed write ("No space left on device"), without
    the op and path decorations TensorFlow wraps them in."""
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    text = getattr(error, "message", None) or str(error)
    text = re.sub(r"\s*\[Op:\w+\].*$", "", text.strip().splitlines()[0])
    return text.rsplit("; ", 1)[-1].strip() or type(error).__name__


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class RunState:
    """The trackable bundle that goes into a checkpoint, in three parts that are read
    separately, so that checkpoints of older versions (without random-generator states, or
    taken at epoch ends only) still load: the training state every version wrote (networks,
    optimizers, grid inputs, finished epochs), the random streams, and the position inside an
    epoch with its metric totals."""

    def __init__(self, model: keras.Model, grid_inputs: dict[str, np.ndarray]):
        self.model = model
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self.seconds = tf.Variable(0.0, dtype=tf.float64, trainable=False, name="seconds")
        self.grid_inputs = {
            k: tf.Variable(v, trainable=False, name=k) for k, v in grid_inputs.items()
        }
        self.rng = _rng_states(model)
        self.trackers = _tracker_variables(model)
        self._resumed_trackers: list[np.ndarray] | None = None
        training = {
            "model": model,
            "epoch": self.epoch,
            **model.optimizers(),
            **{f"fixed_{k}": v for k, v in self.grid_inputs.items()},
        }
        streams = {f"rng_{i}": v for i, v in enumerate(self.rng)}
        within_epoch = {
            "step": self.step,
            "seconds": self.seconds,
            **{f"tracker_{k}": v for k, v in self.trackers.items()},
        }
        self._ckpt = tf.train.Checkpoint(**training, **streams, **within_epoch)
        self._training = tf.train.Checkpoint(**training)
        self._streams = tf.train.Checkpoint(**streams)
        self._within_epoch = tf.train.Checkpoint(**within_epoch)

    def save(self, run_dir: Path, position: Position) -> Path:
        """Write a whole checkpoint beside the current one, then swap it in; a failure while
        writing leaves the current one untouched and raises StorageError."""
        self.epoch.assign(position.epoch)
        self.step.assign(position.step)
        self.seconds.assign(position.seconds)
        run = RunDir(run_dir)
        final, tmp, old = run.checkpoint, run.checkpoint_tmp, run.checkpoint_old
        try:
            shutil.rmtree(tmp, ignore_errors=True)
            self._ckpt.write(str(tmp / "state"))
            record = {
                "epoch": position.epoch,
                "step": position.step,
                "seconds": position.seconds,
                "steps_per_epoch": position.steps_per_epoch,
                "saved_at": time.time(),
            }
            (tmp / POSITION).write_text(json.dumps(record) + "\n")
            for f in tmp.iterdir():
                _fsync(f)
            _fsync(tmp)
        except (OSError, tf.errors.OpError) as e:
            shutil.rmtree(tmp, ignore_errors=True)
            if isinstance(e, cluster_errors()):
                raise  # a lost worker, not the disk
            previous = saved_position(run_dir)
            kept = (
                f"the previous checkpoint ({previous}) is untouched"
                if previous
                else "there is no earlier checkpoint"
            )
            raise StorageError(
                f"could not write a checkpoint in {run_dir} ({_reason(e)}); {kept}"
            ) from None
        if final.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.replace(final, old)
        os.replace(tmp, final)
        _fsync(run_dir)
        shutil.rmtree(old, ignore_errors=True)
        return final

    def restore(self, run_dir: Path) -> Position:
        """Load the newest whole checkpoint and return its position."""
        folder = latest(run_dir)
        if folder is None:
            raise UserError(f"{run_dir} has no checkpoint to resume from")
        prefix = str(folder / "state")
        try:
            self._training.read(prefix).expect_partial().assert_existing_objects_matched()
        except Exception as e:
            raise UserError(
                f"checkpoint in {folder} is corrupt or does not match this run's "
                f"config ({type(e).__name__}); start a new run with --out"
            ) from None
        try:
            self._streams.read(prefix).expect_partial().assert_existing_objects_matched()
        except AssertionError:
            log.warning(
                "checkpoint in %s has no random-generator state (written by an older "
                "version): random streams restart from the seed",
                folder,
            )
        try:
            self._within_epoch.read(prefix).expect_partial().assert_existing_objects_matched()
        except AssertionError:  # an older, epoch-end-only checkpoint
            self.step.assign(0)
            self.seconds.assign(0.0)
        position = Position(
            int(self.epoch.numpy()), int(self.step.numpy()), float(self.seconds.numpy())
        )
        if position.step:
            self._resumed_trackers = [np.array(v.numpy()) for v in self.trackers.values()]
        return position

    def restore_trackers(self) -> None:
        """Put back the metric totals of the epoch a resumed run continues (fit() zeroes the
        trackers as every epoch begins, so this runs after that)."""
        for v, value in zip(self.trackers.values(), self._resumed_trackers or [], strict=False):
            v.assign(value)
        self._resumed_trackers = None


def latest(run_dir: Path) -> Path | None:
    """The checkpoint folder, or the previous one when a kill fell between the two renames."""
    run = RunDir(run_dir)
    for folder in (run.checkpoint, run.checkpoint_old):
        if (folder / "state.index").is_file():
            return folder
    return None


def saved_position(run_dir: Path) -> Position | None:
    """The position of the newest whole checkpoint, from its position file (None when there
    is no checkpoint; epoch ends only for checkpoints of older versions without the file)."""
    folder = latest(run_dir)
    if folder is None:
        return None
    try:
        record = json.loads((folder / POSITION).read_text())
        return Position(
            int(record["epoch"]),
            int(record["step"]),
            float(record["seconds"]),
            record.get("steps_per_epoch"),
        )
    except (OSError, ValueError, KeyError):
        reader = tf.train.load_checkpoint(str(folder / "state"))
        return Position(int(reader.get_tensor("epoch/.ATTRIBUTES/VARIABLE_VALUE")))


class StopRequest:
    """While active, SIGTERM (what schedulers, `docker stop` and Kubernetes send) and SIGINT
    (Ctrl-C) only note the request; the Checkpoint callback saves at the next step boundary and
    raises Interrupted. A second signal stops at once, keeping the last checkpoint."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self):
        self.signum: int | None = None
        self._previous: dict[int, object] = {}

    def _handle(self, signum, frame) -> None:
        if self.signum is not None:
            raise Interrupted(signum, saved=False)
        self.signum = signum
        log.info(
            "\n%s: saving a checkpoint at the next step boundary (send it again to stop at once)",
            signal.Signals(signum).name,
        )

    def __enter__(self) -> StopRequest:
        try:
            self._previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        except ValueError:  # not the main thread: signals stay as they were
            self._previous = {}
        return self

    def __exit__(self, *exc) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)


class Checkpoint(keras.callbacks.Callback):
    """Saves a RunState at every epoch end and, inside an epoch, at the first step boundary
    `every` seconds after the last save; sets the epoch order's epoch as each epoch begins; on a
    StopRequest, saves at the next step boundary and raises Interrupted.

    Put it after the callbacks that write the epoch's files, so a checkpoint of a finished epoch
    comes after its history row and sample grid.
    """

    def __init__(
        self,
        run_dir: str | os.PathLike,
        state: RunState,
        order: EpochOrder,
        every: float = 0.0,
        start: Position = Position(0),
        stop: StopRequest | None = None,
        clock: Callable[[], float] = time.monotonic,
        agree: Callable[..., tuple[bool, ...]] | None = None,
    ):
        super().__init__()
        self.run_dir = Path(run_dir)
        self.state, self.order, self.every, self.start = state, order, float(every), start
        self.stop = stop
        self.clock = clock
        self.agree = agree  # multiworker: every worker saves and stops at the same steps
        self.position = start
        self.stop_after_epoch: int | None = None  # ends a fit() that trains one resumed epoch
        self._first = 0
        self._epoch_start = self._carried = self._last_save = 0.0

    def on_train_begin(self, logs=None):
        self._last_save = self.clock()

    def on_epoch_begin(self, epoch, logs=None):
        self.order.epoch = epoch
        resumed = epoch == self.start.epoch and self.start.step > 0
        self._first = self.start.step if resumed else 0
        self._carried = self.start.seconds if resumed else 0.0
        if resumed:
            self.state.restore_trackers()
        self.position = Position(epoch, self._first, self._carried, self.order.steps)
        self._epoch_start = self.clock()
        signum, _ = self._decide()
        if signum is not None:
            self._stop(signum)

    def on_train_batch_end(self, batch, logs=None):
        step = min(self._first + batch + 1, self.order.steps)
        if step == self.order.steps:
            return  # the epoch-end save (and stop) comes next, after the epoch's files
        self.position = Position(self.position.epoch, step, self._seconds(), self.order.steps)
        signum, due = self._decide(self.every > 0 and self.clock() - self._last_save >= self.every)
        if signum is not None:
            self._stop(signum)
        if due:
            self.save()

    def on_epoch_end(self, epoch, logs=None):
        self.position = Position(epoch + 1, steps_per_epoch=self.order.steps)
        self.save()
        signum, _ = self._decide()
        if signum is not None:
            self._stop(signum, saved=True)
        if self.stop_after_epoch == epoch:
            self.model.stop_training = True

    def _seconds(self) -> float:
        return round(self._carried + self.clock() - self._epoch_start, 3)

    def save(self) -> None:
        self.state.save(self.run_dir, self.position)
        self._last_save = self.clock()

    def _decide(self, due: bool = False) -> tuple[int | None, bool]:
        """(the signal to stop for or None, whether to save now). Under multiworker the
        workers agree: all stop if any was signalled, all save if any one's clock says so."""
        signum = self.stop.signum if self.stop is not None else None
        if self.agree is not None:
            stop, due = self.agree(signum is not None, due)
            if stop and signum is None:
                signum = signal.SIGTERM  # another worker was told to stop
        return signum, due

    def _stop(self, signum: int, saved: bool = False) -> None:
        if not saved:
            self.save()
        raise Interrupted(signum, saved=True)
