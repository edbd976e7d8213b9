"""Callbacks that write a run directory as training goes: a sample grid, a history row and the
loss curves per epoch (where each goes is `rundir`'s business), and a guard against NaN losses."""

from __future__ import annotations

import os
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

import keras
import numpy as np
import tensorflow as tf
from tensorflow.core.util import event_pb2

from gan_vae_tf import plots
from gan_vae_tf.errors import NonFiniteLoss
from gan_vae_tf.rundir import RunDir


class SampleGrid(keras.callbacks.Callback):
    """Writes the epoch's sample grid from `render(model)`, which returns a uint8 mosaic.

    The render function uses fixed inputs (noise, latent codes, a test batch), so the PNGs of
    successive epochs show the same samples improving.
    """

    def __init__(
        self,
        run_dir: str | os.PathLike,
        render: Callable[[keras.Model], np.ndarray],
        scale: int = 2,
    ):
        super().__init__()
        self.run = RunDir(run_dir)
        self.render = render
        self.scale = scale

        self.last: np.ndarray | None = None  # the latest mosaic, for TensorBoardLog

    def on_epoch_end(self, epoch, logs=None):
        self.last = self.render(self.model)
        plots.save_png(self.last, self.run.sample_png(epoch + 1), self.scale)


class HistoryCSV(keras.callbacks.Callback):
    """Appends one row per epoch to the run's history (epoch, seconds, every logged metric),
    flushed at once so a killed run keeps every finished epoch, and redraws the loss curves."""

    def __init__(self, run_dir: str | os.PathLike, title: str = ""):
        super().__init__()
        self.run = RunDir(run_dir)
        self.title = title
        self._start = 0.0
        self._carried: dict[int, float] = {}
        self.last_row: dict | None = None  # the newest row, for TensorBoardLog's images/s

    def carry(self, epoch: int, seconds: float) -> None:
        """Seconds a stopped process already trained epoch `epoch` (from 0) for; added to that
        epoch's row when a resumed run finishes it."""
        self._carried[epoch] = seconds

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter() - self._carried.pop(epoch, 0.0)

    def on_epoch_end(self, epoch, logs=None):
        row = {"epoch": epoch + 1, "seconds": round(time.perf_counter() - self._start, 3)}
        row.update({k: float(v) for k, v in sorted((logs or {}).items())})
        self.run.append_history(row)
        self.last_row = row
        plots.loss_curves(self.run.read_history(), self.run.loss_curves, self.title)


class NonFiniteGuard(keras.callbacks.Callback):
    """Stops at the first step whose running losses are not finite, naming epoch and step."""

    def __init__(self):
        super().__init__()
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch + 1

    def on_train_batch_end(self, batch, logs=None):
        for name, value in (logs or {}).items():
            if not np.isfinite(float(value)):
                raise NonFiniteLoss(
                    f"{name} became {float(value)} at epoch {self.epoch}, step "
                    f"{batch + 1}; the last good checkpoint is kept"
                )


_DESCRIPTIONS = {
    "d_loss": "discriminator loss (BCE from logits, without the R1 penalty)",
    "g_loss": "generator loss (BCE from logits)",
    "d_real": "mean D(x): discriminator probability on real training images",
    "d_fake": "mean D(G(z)): discriminator probability on generated images",
    "loss": "negative ELBO, nats per image",
    "elbo": "ELBO, nats per image",
    "log_px_z": "reconstruction log-likelihood log p(x|z), nats per image",
    "kl": "KL(q(z|x) || p(z)), nats per image",
}


class TensorBoardLog(keras.callbacks.Callback):
    """Per epoch, into RUN_DIR/tensorboard: every logged metric (`train/...`, and `test/...` for
    the VAE's test-set values), the training images/s, and the epoch's sample grid.

    The step is the epoch number, so a resumed run continues the same curves; `truncate_events`
    first drops any epoch written after the checkpoint it resumes from, so no step appears twice.
    """

    def __init__(
        self,
        folder: str | os.PathLike,
        images_per_epoch: int,
        rows: HistoryCSV,
        grid: SampleGrid | None = None,
    ):
        super().__init__()
        self.writer = tf.summary.create_file_writer(str(folder))
        self.images_per_epoch, self.rows, self.grid = images_per_epoch, rows, grid

    def on_epoch_end(self, epoch, logs=None):
        try:
            self._write(epoch + 1, logs or {})
        except tf.errors.OpError as e:  # a full disk, say: the run stops as for any write
            raise OSError(f"TensorBoard events ({e.message})") from None

    def _write(self, step: int, logs: dict) -> None:
        with self.writer.as_default(step=step):
            for key, value in sorted(logs.items()):
                name = key[4:] if key.startswith("val_") else key
                tag = f"{'test' if key.startswith('val_') else 'train'}/{name}"
                tf.summary.scalar(tag, float(value), description=_DESCRIPTIONS.get(name))
            row = self.rows.last_row  # written just before, for this epoch
            if row and row["epoch"] == step and row["seconds"] > 0:
                tf.summary.scalar(
                    "speed/images_per_second",
                    self.images_per_epoch / row["seconds"],
                    description="images per second this epoch (steps x global batch / the "
                    "epoch's seconds in history.csv, as summary.json counts them)",
                )
            if self.grid is not None and self.grid.last is not None:
                tf.summary.image(
                    "sample_grid",
                    self.grid.last[None],
                    description="the fixed-input sample grid, as in the epoch's PNG",
                )
        self.writer.flush()

    def close(self) -> None:
        """Close the event file; a failure here is a warning, so it never hides the error that
        ended the run."""
        try:
            self.writer.close()
        except (OSError, tf.errors.OpError) as e:
            warnings.warn(f"TensorBoard events may be incomplete: {e}", stacklevel=2)


def event_files(folder: str | os.PathLike) -> list[Path]:
    return sorted(Path(folder).glob("events.out.tfevents.*"))


def truncate_events(folder: str | os.PathLike, last_step: int) -> None:
    """Drop every summary with a step after `last_step` from the TensorBoard event files in
    `folder` (epochs written after the checkpoint a run resumes from, and a record cut short
    by a kill), so the resumed run writes each epoch exactly once."""
    for path in event_files(folder):
        kept, changed = [], False
        try:
            for record in tf.data.TFRecordDataset(str(path)):
                raw = record.numpy()
                event = event_pb2.Event.FromString(raw)
                if event.HasField("summary") and event.step > last_step:
                    changed = True
                else:
                    kept.append(raw)
        except tf.errors.DataLossError:  # a record cut short by a kill
            changed = True
        if changed:
            tmp = path.with_name("truncating.tmp")
            with tf.io.TFRecordWriter(str(tmp)) as writer:
                for raw in kept:
                    writer.write(raw)
            os.replace(tmp, path)


class ProgressLines(keras.callbacks.Callback):
    """Progress where Keras' bar cannot draw (under make, piped, in a log file): a line at least
    every `interval` seconds with the step, images/s and the epoch's ETA, and one per epoch.

    A progress bar rewrites one terminal line with carriage returns; in a file that gives either
    one line per epoch (Keras' verbose=2: minutes of silence) or thousands of lines. This prints
    what a person checking on a run needs, at a pace a log can hold.
    """

    def __init__(
        self,
        epochs: int,
        batch_size: int,
        steps_per_epoch: int | None = None,
        interval: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        stream: TextIO | None = None,
        first_step: int = 0,
    ):
        super().__init__()
        self.epochs, self.batch_size, self.steps_per_epoch = epochs, batch_size, steps_per_epoch
        self.interval, self.clock, self.stream = float(interval), clock, stream
        self.first_step = first_step  # steps of the first epoch done before this fit() (resumed)
        self._epoch = 0
        self._start = self._last = 0.0

    def _print(self, text: str) -> None:
        stream = self.stream or sys.stdout
        stream.write(text + "\n")
        stream.flush()

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch + 1
        self._start = self._last = self.clock()

    def on_train_batch_end(self, batch, logs=None):
        now = self.clock()
        if now - self._last < self.interval:
            return
        self._last = now
        here = batch + 1  # steps run by this fit() in this epoch
        done = self.first_step + here
        total = self.steps_per_epoch or ((self.params or {}).get("steps") or 0) + self.first_step
        rate = here * self.batch_size / max(now - self._start, 1e-9)
        where = f"step {done}/{total}" if total else f"step {done}"
        eta = f", epoch ETA {_clock_time((total - done) * self.batch_size / rate)}" if total else ""
        self._print(
            f"epoch {self._epoch}/{self.epochs} {where}, {rate:.0f} img/s{eta}{_metrics_text(logs)}"
        )

    def on_epoch_end(self, epoch, logs=None):
        seconds = self.clock() - self._start
        self.first_step = 0
        self._print(
            f"epoch {epoch + 1}/{self.epochs} done in {_clock_time(seconds)}{_metrics_text(logs)}"
        )


def _clock_time(seconds: float) -> str:
    """h:mm:ss or m:ss."""
    seconds = int(round(max(seconds, 0.0)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _metrics_text(logs: dict | None) -> str:
    return "".join(f"; {k} {float(v):.4g}" for k, v in sorted((logs or {}).items()))
