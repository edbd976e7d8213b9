"""What both models share (models/base.py): one optimizer per network, `.keras` round trips,
every precision, loss-scale skips, one trace per step."""

import keras
import numpy as np
import pytest

from gan_vae_tf import data, kinds
from helpers import pipeline, synthetic_batches, tiny_config


@pytest.mark.parametrize("preset", ["gan-mnist", "vae-mnist"])
def test_keras_file_round_trip_keeps_weights_and_outputs(tmp_path, preset):
    cfg = tiny_config(preset)
    model = kinds.build(cfg)
    model.fit(synthetic_batches(cfg), epochs=1, verbose=0, shuffle=False)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert type(loaded) is type(model)
    for name, part in model.networks().items():
        other = loaded.networks()[name]
        probe = (
            np.random.default_rng(0).standard_normal((2, *part.input_shape[1:])).astype("float32")
        )
        np.testing.assert_allclose(part(probe).numpy(), other(probe).numpy(), rtol=1e-5, atol=1e-5)
    loaded.train_step(next(iter(synthetic_batches(cfg))))  # the restored compile config trains


@pytest.mark.parametrize("precision", ["float32", "mixed_bfloat16", "mixed_float16"])
@pytest.mark.parametrize("preset", ["gan-mnist", "vae-mnist"])
def test_every_precision_trains_with_finite_float32_losses_and_float32_variables(preset, precision):
    cfg = tiny_config(preset)
    model = kinds.build(cfg, precision)
    for batch in list(synthetic_batches(cfg))[:3]:
        logs = model.train_step(batch)
    assert all(np.isfinite(float(v)) and v.dtype == "float32" for v in logs.values())
    assert all(v.dtype == "float32" for v in model.trainable_variables)
    optimizers = list(model.optimizers().values())
    scaled = [isinstance(o, keras.optimizers.LossScaleOptimizer) for o in optimizers]
    assert scaled == [precision == "mixed_float16"] * len(optimizers)


def test_mixed_float16_counts_skipped_loss_scale_steps_instead_of_failing():
    cfg = tiny_config("gan-mnist")
    model = kinds.build(cfg, "mixed_float16")
    batch = next(iter(synthetic_batches(cfg)))
    model.train_step(batch)  # builds the loss-scale state
    before = [w.numpy().copy() for w in model.discriminator.trainable_weights]
    model.d_optimizer.dynamic_scale.assign(3e38)  # the scaled loss overflows to inf
    logs = model.train_step(batch)
    assert float(logs["skipped_steps"]) == 1.0 and np.isfinite(float(logs["d_loss"]))
    assert all(
        np.array_equal(a, b.numpy())
        for a, b in zip(before, model.discriminator.trainable_weights, strict=True)
    )
    assert float(model.d_optimizer.dynamic_scale.numpy()) < 3e38  # the scaler backed off


def test_float32_runs_log_no_skipped_steps():
    cfg = tiny_config("vae-mnist")
    logs = kinds.build(cfg).train_step(next(iter(synthetic_batches(cfg))))
    assert "skipped_steps" not in logs


@pytest.mark.parametrize("preset", ["gan-mnist", "vae-mnist"])
def test_train_and_test_steps_are_traced_once_across_epochs(preset):
    """Python in a step runs only while tracing: one call each over three epochs means no
    retracing (fixed training batch shapes, no Python values that change per step)."""
    cfg = tiny_config(preset)
    model = kinds.build(cfg)
    calls = {"train": 0, "test": 0}
    train_step, test_step = model.train_step, model.test_step

    def counted_train(x):
        calls["train"] += 1
        return train_step(x)

    def counted_test(x):
        calls["test"] += 1
        return test_step(x)

    model.train_step, model.test_step = counted_train, counted_test
    images = data.synthetic(70).train
    model.fit(
        pipeline(images, cfg, training=True),
        epochs=3,
        verbose=0,
        shuffle=False,
        validation_data=pipeline(images[:20], cfg, training=False),
    )
    assert calls == {"train": 1, "test": 1}


def test_compile_takes_one_optimizer_per_network_and_keras_files_keep_them(tmp_path):
    cfg = tiny_config("gan-mnist")
    model = kinds.of(cfg).build(cfg)
    model.compile(
        g_optimizer=keras.optimizers.Adam(3e-4, beta_1=0.5), d_optimizer=keras.optimizers.SGD(1e-2)
    )
    model.train_step(next(iter(synthetic_batches(cfg))))
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    g, d = loaded.optimizers()["g_optimizer"], loaded.optimizers()["d_optimizer"]
    assert isinstance(g, keras.optimizers.Adam) and isinstance(d, keras.optimizers.SGD)
    assert float(g.learning_rate) == pytest.approx(3e-4) and float(g.beta_1) == pytest.approx(0.5)
    assert float(d.learning_rate) == pytest.approx(1e-2)


def test_compile_configs_of_older_keras_files_still_restore():
    model = kinds.of(tiny_config("vae-mnist")).build(tiny_config("vae-mnist"))
    model.compile_from_config({"learning_rate": 2e-3, "beta_1": 0.5, "loss_scale": True})
    opt = model.optimizers()["vae_optimizer"]
    assert isinstance(opt, keras.optimizers.LossScaleOptimizer)
    assert float(opt.inner_optimizer.learning_rate) == pytest.approx(2e-3)


@pytest.mark.parametrize("preset", ["gan-mnist", "vae-mnist"])
def test_every_optimizer_trains_exactly_its_network(preset):
    model = kinds.build(tiny_config(preset))
    trained = [id(v) for opt in model.optimizers().values() for v in opt._trainable_variables]
    assert sorted(trained) == sorted(id(v) for v in model.trainable_variables)
