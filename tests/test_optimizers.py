"""Adam from a config, the LinearTail schedule and a decay sized by the run."""

import keras
import pytest

from gan_vae_tf import config, kinds, models
from helpers import tiny_config


@pytest.mark.parametrize("preset", ["gan-mnist", "vae-mnist"])
def test_run_optimizers_take_learning_rate_and_both_betas_from_the_config(preset):
    sets = ["train.learning_rate=3e-3", "train.beta_1=0.0", "train.beta_2=0.95"]
    model = kinds.build(config.override(tiny_config(preset), sets))
    for opt in model.optimizers().values():
        assert float(opt.learning_rate) == pytest.approx(3e-3)
        assert (float(opt.beta_1), float(opt.beta_2)) == pytest.approx((0.0, 0.95))


def test_linear_tail_keeps_the_rate_then_falls_linearly_to_zero_at_the_last_step():
    tail = models.LinearTail(1e-3, total_steps=100, decay_steps=40)
    rates = [float(tail(t)) for t in (0, 60, 70, 90, 100, 150)]
    assert rates == pytest.approx([1e-3, 1e-3, 7.5e-4, 2.5e-4, 0.0, 0.0])
    with pytest.raises(ValueError, match="decay_steps"):
        models.LinearTail(1e-3, total_steps=100, decay_steps=101)


@pytest.mark.parametrize("preset", ["gan-mnist", "vae-mnist"])
def test_lr_decay_spans_the_whole_run_for_every_optimizer_and_survives_serialization(preset):
    cfg = config.override(tiny_config(preset), ["train.lr_decay=0.5", "train.epochs=4"])
    model = kinds.build(cfg, steps_per_epoch=10)  # 40 steps, the last 20 decaying
    for opt in model.optimizers().values():
        clone = keras.optimizers.deserialize(keras.optimizers.serialize(opt))
        for o in (opt, clone):
            rates = []
            for step in (0, 20, 30, 40):
                o.iterations.assign(step)
                rates.append(float(o.learning_rate))
            assert rates == pytest.approx([c * cfg.train.learning_rate for c in (1, 1, 0.5, 0)])


def test_lr_decay_without_a_known_run_length_is_refused():
    cfg = config.override(tiny_config("gan-mnist", steps_per_epoch=None), ["train.lr_decay=0.5"])
    with pytest.raises(ValueError, match="total number of steps"):
        kinds.build(cfg)  # steps_per_epoch none: one pass over data this code does not see
