"""TimeBudget: probes on a training-time schedule that does not charge the probes' own time."""
from __future__ import annotations

import numpy as np
import pytest

from gan_vae_tf import callbacks, data, models
from conftest import tiny_config


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class FakeModel:
    stop_training = False


def drive(budget: float, every: float, step_seconds: float, probe_seconds: float, max_steps: int = 100):
    clock = FakeClock()

    def probe(model) -> dict:
        clock.now += probe_seconds
        return {"score": clock.now}

    cb = callbacks.TimeBudget(budget, every, probe, batch_size=4, clock=clock)
    cb.set_model(FakeModel())
    cb.on_train_begin()
    for step in range(max_steps):
        clock.now += step_seconds
        cb.on_train_batch_end(step)
        if cb.model.stop_training:
            break
    return cb


def test_time_budget_probes_on_schedule_and_stops_when_spent():
    cb = drive(budget=10.0, every=3.0, step_seconds=1.0, probe_seconds=0.0)
    assert [p["train_seconds"] for p in cb.points] == [0.0, 3.0, 6.0, 9.0, 10.0]
    assert cb.steps == 10 and cb.points[-1]["images_seen"] == 40
    assert cb.model.stop_training


def test_time_budget_does_not_charge_probe_time_to_training():
    cb = drive(budget=10.0, every=5.0, step_seconds=1.0, probe_seconds=100.0)
    assert [p["train_seconds"] for p in cb.points] == [0.0, 5.0, 10.0]
    assert cb.steps == 10


def test_time_budget_rejects_a_non_positive_budget():
    with pytest.raises(ValueError, match="positive"):
        callbacks.TimeBudget(0, 1.0, lambda m: {}, batch_size=1)


def test_time_budget_stops_a_real_fit_before_its_epochs_end():
    cfg = tiny_config("gan-mnist")
    model = models.build(cfg)
    images = data.synthetic(64).train
    cb = callbacks.TimeBudget(1e-9, 1.0, lambda m: {"mean": float(np.mean(m.sample(2)))},
                              batch_size=cfg.train.batch_size)
    model.fit(data.pipeline(images, cfg, training=True), epochs=50, callbacks=[cb], verbose=0)
    assert cb.steps == 1
    assert len(cb.points) == 2 and 0.0 <= cb.points[-1]["mean"] <= 1.0
