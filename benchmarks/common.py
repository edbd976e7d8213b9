"""What the benchmarks share: a preset as `train.py` runs it, the project's training path warmed
up, the data they measure on, the machine's name, and a wall-clock training budget.

Benchmarks run as modules from the repository root (`python -m benchmarks.bench`), so they
import this as `benchmarks.common` with no path tricks. Nothing here ships in the package.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import keras

from gan_vae_tf.precision import cpu_name  # noqa: F401  (the benchmarks name the CPU)

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "experiments" / "bench"


def preset_config(preset: str, data_dir: str | None):
    """A preset as `train.py` would run it, reading data from `data_dir` when given."""
    from dataclasses import replace

    from gan_vae_tf import config as config_lib

    cfg = config_lib.preset(preset)
    return replace(cfg, data=replace(cfg.data, data_dir=data_dir)) if data_dir else cfg


def images_for(cfg, n: int):
    """Real images when ../shared/data (or --data-dir) has them, else synthetic of the same shape."""
    from gan_vae_tf import data

    try:
        ds = data.load(cfg.data)
        return ds.train[:n], ds.source
    except Exception as e:  # the benchmark measures speed; say which data it used
        print(f"  (no real data: {e}; using synthetic images)", file=sys.stderr)
        syn = data.synthetic(n + n // 4, cfg.data.image_size, cfg.data.channels)
        return syn.train[:n], syn.source


def parse_arm(text: str) -> tuple[str, list[str]]:
    """`preset:a.b=1,c.d=2,3` -> (preset, ["a.b=1", "c.d=2,3"]): a piece without "=" continues
    the previous value (a tuple such as gan.gen_widths=64,32)."""
    preset, _, rest = text.partition(":")
    sets: list[str] = []
    for piece in filter(None, rest.split(",")):
        if "=" in piece or not sets:
            sets.append(piece)
        else:
            sets[-1] += "," + piece
    return preset, sets


def arm_config(arm: str, seed: int):
    """The config an arm names: its preset with its overrides, trained with `seed`."""
    from dataclasses import replace

    from gan_vae_tf import config as config_lib

    preset, sets = parse_arm(arm)
    cfg = config_lib.override(config_lib.preset(preset), sets)
    return replace(cfg, train=replace(cfg.train, seed=seed))


def build_arm(cfg, precision_override: str | None = None):
    """The model as `train.py` builds it, seeded by the config, in `precision_override` or else
    the config's own precision; returns (model, policy, why that policy)."""
    import keras

    from gan_vae_tf import kinds, precision

    keras.utils.set_random_seed(cfg.train.seed)
    policy, why = precision.resolve(precision_override or cfg.train.precision)
    return kinds.build(cfg, policy), policy, why


def project_model(cfg, images, warmup_steps: int, in_memory: bool = False):
    """The project's training path as `train.py` builds it (auto precision, `data.pipeline`),
    repeated and warmed up so the step is traced; `in_memory` swaps the pipeline for one
    resident batch. Returns (model, dataset, precision policy)."""
    import tensorflow as tf

    from gan_vae_tf import data, kinds

    model, policy, _ = build_arm(cfg)
    ds = data.pipeline(images, cfg, kinds.of(cfg).pixels(cfg), training=True)
    if in_memory:
        ds = tf.data.Dataset.from_tensors(next(iter(ds)))
    ds = ds.repeat()
    model.fit(ds, epochs=1, steps_per_epoch=warmup_steps, verbose=0, shuffle=False)
    return model, ds, policy


class TimeBudget(keras.callbacks.Callback):
    """Trains for a wall-clock budget and calls `probe(model, seconds, steps)` every `every`
    seconds of it.

    Probe time (sampling, scoring) is not charged to the budget, so the curve of probe results
    against `train_seconds` reads as quality per second of training. The first probe runs before
    the first step, the last one when the budget is spent; then training stops.
    """

    def __init__(
        self,
        budget: float,
        every: float,
        probe: Callable[[keras.Model, float, int], dict],
        batch_size: int,
        clock: Callable[[], float] = time.perf_counter,
    ):
        super().__init__()
        if budget <= 0 or every <= 0:
            raise ValueError(f"budget and interval must be positive, got {budget} and {every}")
        self.budget, self.every, self.probe = float(budget), float(every), probe
        self.batch_size, self.clock = batch_size, clock
        self.points: list[dict] = []
        self.steps = self.epoch_start = 0

    def _optimizer_steps(self) -> int | None:
        """Steps the model's first optimizer has taken; None for a model without `optimizers()`.
        Under mixed_float16 a step the loss scaler skipped is not counted."""
        optimizers = getattr(self.model, "optimizers", None)
        if not callable(optimizers):
            return None
        return int(next(iter(optimizers().values())).iterations)

    def on_train_begin(self, logs=None):
        self.base = self._optimizer_steps()
        self.uncharged = 0.0
        self.start = self.clock()
        self.next_probe = self.every
        self._record(0.0)

    def elapsed(self) -> float:
        return self.clock() - self.start - self.uncharged

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_start = self.steps

    def on_train_batch_end(self, batch, logs=None):
        # `batch` is the epoch's last step index so far: one call can run several steps (a
        # short last call of an epoch is counted in full; `_record` counts exactly).
        self.steps = self.epoch_start + batch + 1
        spent = self.elapsed()
        if spent >= self.next_probe or spent >= self.budget:
            self._record(spent)
            while self.next_probe <= spent:
                self.next_probe += self.every
        if spent >= self.budget:
            self.model.stop_training = True

    def _record(self, spent: float) -> None:
        paused = self.clock()
        if self.base is not None:
            self.steps = self._optimizer_steps() - self.base
        spent = round(spent, 2)
        point = {
            "train_seconds": spent,
            "steps": self.steps,
            "images_seen": self.steps * self.batch_size,
            **self.probe(self.model, spent, self.steps),
        }
        self.points.append(point)
        self.uncharged += self.clock() - paused
