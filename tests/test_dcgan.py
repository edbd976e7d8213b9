"""The DCGAN: generator EMA, sampling by name, R1 (and lazy R1), update order, spectral
normalization."""

from dataclasses import replace

import keras
import numpy as np
import pytest
import tensorflow as tf

from gan_vae_tf import config, kinds, losses, models, networks
from helpers import synthetic_batches, tiny_config


def _ema_gan(decay: float = 0.9):
    cfg = tiny_config("gan-mnist", learning_rate=0.02)  # large steps: averages differ clearly
    return cfg, kinds.build(replace(cfg, gan=replace(cfg.gan, ema_decay=decay)))


def test_generator_ema_is_the_decay_weighted_average_updated_inside_the_compiled_step():
    cfg, model = _ema_gan(decay=0.9)
    step = tf.function(model.train_step)
    batch = next(iter(synthetic_batches(cfg)))
    initial = [w.numpy().copy() for w in model.generator.weights]
    expected = [w.copy() for w in initial]
    for t in range(1, 6):
        step(batch)
        decay = min(0.9, (1 + t) / (10 + t))  # the ramp-up over updates t = 1, 2, ..., then 0.9
        expected = [
            decay * e + (1 - decay) * w.numpy()
            for e, w in zip(expected, model.generator.weights, strict=True)
        ]
    averaged = [w.numpy() for w in model.generator_ema.weights]
    assert (
        len(averaged) == len(initial) > len(model.generator.trainable_weights)
    )  # BN statistics too
    for avg, exp in zip(averaged, expected, strict=True):
        np.testing.assert_allclose(avg, exp, rtol=1e-5, atol=1e-6)
    trained = [i for i, w in enumerate(model.generator.trainable_weights)]
    assert all(not np.allclose(averaged[i], model.generator.weights[i].numpy()) for i in trained)
    assert all(not np.allclose(averaged[i], initial[i]) for i in trained)


def test_samples_come_from_the_ema_generator_unless_the_raw_one_is_asked_for():
    cfg, model = _ema_gan()
    model.train_step(next(iter(synthetic_batches(cfg))))
    noise = np.random.default_rng(0).standard_normal((3, cfg.gan.noise_dim)).astype("float32")
    ema = model.generator_ema(noise, training=False).numpy()
    raw = model.generator(noise, training=False).numpy()
    assert not np.allclose(ema, raw)
    np.testing.assert_allclose(model(noise).numpy(), ema, rtol=1e-6)
    assert model.generator_for("raw") is model.generator
    assert model.generator_for("ema") is model.generator_ema is model.generator_for()
    with pytest.raises(ValueError, match="'ema' or 'raw'"):
        model.generator_for("average")


def test_a_gan_without_ema_keeps_no_averaged_generator():
    model = kinds.build(tiny_config("gan-mnist-report"))
    assert model.generator_ema is None and "generator_ema" not in model.networks()
    assert model.generator_for() is model.generator
    with pytest.raises(ValueError, match="keeps no EMA generator"):
        model.sample(2, generator="ema")


def test_generator_ema_survives_keras_files(tmp_path):
    cfg, model = _ema_gan()
    for batch in list(synthetic_batches(cfg))[:2]:
        model.train_step(batch)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert loaded.options == model.options and loaded.default_generator == "ema"
    for a, b in zip(model.generator_ema.weights, loaded.generator_ema.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert not loaded.generator_ema.trainable_weights


def test_a_run_config_can_sample_the_raw_generator_although_an_ema_is_kept():
    cfg = tiny_config("gan-mnist")
    cfg = replace(cfg, gan=replace(cfg.gan, ema_decay=0.9, sample_with_ema=False))
    model = kinds.build(cfg)
    assert model.generator_ema is not None and model.generator_for() is model.generator


def _linear_gan(**options):
    """A tiny generator and a linear discriminator D(x) = w.x + b, trained with plain SGD: the
    R1 penalty and both update orders have closed forms for it."""
    cfg = tiny_config("gan-mnist")
    generator = networks.generator(cfg)
    discriminator = keras.Sequential(
        [keras.Input(cfg.image_shape), keras.layers.Flatten(), keras.layers.Dense(1)]
    )
    model = models.DCGAN(generator, discriminator, options=config.GANConfig(**options), seed=0)
    model.compile(g_optimizer=keras.optimizers.SGD(0.1), d_optimizer=keras.optimizers.SGD(0.1))
    real = next(iter(synthetic_batches(cfg)))
    return model, real


def test_r1_penalty_is_half_gamma_times_the_squared_gradient_norm_at_real_images():
    plain, real = _linear_gan()
    penalized, _ = _linear_gan(r1_gamma=4.0)
    penalized.set_weights(plain.get_weights())
    fake = plain.generator(plain.sample_noise(8), training=True)
    w = plain.discriminator.layers[-1].kernel.numpy()
    without, no_penalty, *_ = plain._discriminator_loss(real, fake)
    loss, penalty, *_ = penalized._discriminator_loss(real, fake)
    assert float(loss) == pytest.approx(float(without)) and no_penalty == 0.0
    # The gradient of w.x + b with respect to x is w for every image.
    assert float(penalty) == pytest.approx(0.5 * 4.0 * np.sum(w**2), rel=1e-5)


def _two_layer_linear_gan(policy: str, weight: float):
    """D(x) = c2 * (c1 * sum(x)) in `policy`: its input gradient c1 * c2 per pixel is below
    float16's smallest subnormal (6e-8) while c1 and c2 are not."""
    cfg = tiny_config("gan-mnist")
    discriminator = keras.Sequential(
        [
            keras.Input(cfg.image_shape),
            keras.layers.Flatten(),
            keras.layers.Dense(1, use_bias=False, dtype=policy, kernel_initializer="ones"),
            keras.layers.Dense(1, use_bias=False, dtype=policy, kernel_initializer="ones"),
        ]
    )
    for layer in discriminator.layers[-2:]:
        layer.kernel.assign(layer.kernel * weight)
    options = config.GANConfig(r1_gamma=1.0)
    model = models.DCGAN(networks.generator(cfg, policy), discriminator, options=options, seed=0)
    model.compile(loss_scale=policy == "mixed_float16")
    return model, next(iter(synthetic_batches(cfg)))


def test_r1_under_mixed_float16_keeps_input_gradients_that_float16_alone_would_flush_to_zero():
    weight = 1e-4
    reference, real = _two_layer_linear_gan("float32", weight)
    half, _ = _two_layer_linear_gan("mixed_float16", weight)
    _, r1_float32 = reference._real_logits_and_r1(real)
    _, r1_half = half._real_logits_and_r1(real)
    pixels = int(np.prod(real.shape[1:]))
    assert float(r1_float32) == pytest.approx(pixels * weight**4, rel=1e-3, abs=0)
    assert float(r1_half) == pytest.approx(float(r1_float32), rel=2e-2, abs=0)


def test_an_overflowing_float16_r1_step_is_skipped_and_logs_a_finite_d_loss():
    half, real = _two_layer_linear_gan("mixed_float16", 1.0)
    half.d_optimizer.dynamic_scale.assign(2.0**20)  # the scaled input gradient overflows float16
    before = [w.numpy().copy() for w in half.discriminator.weights]
    logs = half.train_step(real)
    assert np.isfinite(float(logs["d_loss"])) and float(logs["skipped_steps"]) >= 1.0
    assert float(half.d_optimizer.dynamic_scale) < 2.0**20
    for a, b in zip(before, half.discriminator.weights, strict=True):
        np.testing.assert_array_equal(a, b.numpy())


def test_r1_moves_the_discriminator_weights_by_its_own_gradient_gamma_w():
    plain, real = _linear_gan()
    penalized, _ = _linear_gan(r1_gamma=2.0)
    penalized.set_weights(plain.get_weights())
    w = plain.discriminator.layers[-1].kernel.numpy().copy()
    for model in (plain, penalized):
        model.seed_generator.state.assign([0, 0])
        model.train_step(real)
    moved = penalized.discriminator.layers[-1].kernel.numpy()
    # d/dw of (gamma / 2) |w|^2 is gamma w; SGD at 0.1 subtracts 0.1 of it.
    expected = plain.discriminator.layers[-1].kernel.numpy() - 0.1 * 2.0 * w
    np.testing.assert_allclose(moved, expected, rtol=1e-5, atol=1e-6)


def test_lazy_r1_pulls_by_every_times_gamma_w_on_every_every_th_step_and_not_between():
    """With r1_every 3 the first step (iteration 0) and the fourth carry the penalty at three
    times its weight; the two between are the plain BCE step."""
    plain, real = _linear_gan()
    lazy, _ = _linear_gan(r1_gamma=2.0, r1_every=3)
    lazy.set_weights(plain.get_weights())
    for step in range(4):
        w = lazy.discriminator.layers[-1].kernel.numpy().copy()
        plain.set_weights(lazy.get_weights())
        for model in (plain, lazy):
            model.seed_generator.state.assign([0, step])
            model.train_step(real)
        pull = 0.1 * 3 * 2.0 * w if step % 3 == 0 else 0.0
        expected = plain.discriminator.layers[-1].kernel.numpy() - pull
        np.testing.assert_allclose(
            lazy.discriminator.layers[-1].kernel.numpy(), expected, rtol=1e-5, atol=1e-6
        )


def test_lazy_r1_traces_into_one_compiled_step_and_survives_a_config_round_trip():
    cfg = config.override(tiny_config("gan-mnist"), ["gan.r1_gamma=1.0", "gan.r1_every=2"])
    model = kinds.build(cfg)
    assert model.options.r1_every == 2
    again = models.DCGAN.from_config(model.get_config())
    assert again.options.r1_every == 2 and again.options.r1_gamma == 1.0
    step, steps = tf.function(model.train_step), 0
    for batch in synthetic_batches(cfg, 32):
        logs, steps = step(batch), steps + 1
    assert steps >= 2 and all(np.isfinite(float(v)) for v in logs.values())
    assert int(model.d_optimizer.iterations) == steps
    assert step.experimental_get_tracing_count() == 1


@pytest.mark.parametrize("alternating", [False, True])
def test_the_generator_learns_from_the_old_or_the_updated_discriminator(alternating):
    """Simultaneous updates differentiate the generator's loss through the discriminator as it
    was before the step; alternating ones through the discriminator after its update."""
    model, real = _linear_gan(alternating=alternating)
    start = [v.numpy().copy() for v in model.generator.trainable_variables]
    d_before = [v.numpy().copy() for v in model.discriminator.weights]
    state = model.seed_generator.state.numpy().copy()
    model.train_step(real)
    d_after = [v.numpy().copy() for v in model.discriminator.weights]
    assert not all(np.allclose(a, b) for a, b in zip(d_before, d_after, strict=True))

    trained_g = [v.numpy().copy() for v in model.generator.trainable_variables]
    for var, value in zip(model.generator.trainable_variables, start, strict=True):
        var.assign(value)
    model.discriminator.set_weights(d_after if alternating else d_before)
    model.seed_generator.state.assign(state)
    with tf.GradientTape() as tape:
        fake = model.generator(model.sample_noise(real.shape[0]), training=True)
        loss = losses.generator_loss(model.discriminator(fake, training=True))
    grads = tape.gradient(loss, model.generator.trainable_variables)
    for got, value, grad in zip(trained_g, start, grads, strict=True):
        np.testing.assert_allclose(got, value - 0.1 * grad.numpy(), rtol=1e-4, atol=1e-6)


def test_spectral_normalization_wraps_every_discriminator_layer_with_weights():
    cfg = config.override(tiny_config("gan-mnist"), ["gan.disc_spectral_norm=true"])
    net = networks.discriminator(cfg)
    weighted = [layer for layer in net.layers if layer.weights]
    assert weighted and all(isinstance(x, keras.layers.SpectralNormalization) for x in weighted)


@pytest.mark.parametrize("r1_every", [1, 2])
@pytest.mark.parametrize("precision", ["float32", "mixed_bfloat16", "mixed_float16"])
def test_r1_and_alternating_updates_train_under_every_precision(precision, r1_every):
    cfg = config.override(
        tiny_config("gan-mnist"),
        ["gan.r1_gamma=1.0", f"gan.r1_every={r1_every}", "gan.alternating=true"],
    )
    model = kinds.build(cfg, precision)
    nets = (model.generator, model.discriminator)
    before = [[w.numpy().copy() for w in net.trainable_weights] for net in nets]
    for batch in synthetic_batches(cfg, 64):
        logs = model.train_step(batch)
    assert all(np.isfinite(float(v)) for v in logs.values())
    assert model.discriminator(batch).dtype == "float32"
    for net, start in zip(nets, before, strict=True):  # optimizer steps were taken, not skipped
        assert any(
            not np.allclose(a, b.numpy()) for a, b in zip(start, net.trainable_weights, strict=True)
        )


@pytest.mark.parametrize("precision", ["mixed_bfloat16", "mixed_float16"])
def test_spectral_normalization_keeps_float32_kernels_and_logits_under_mixed_precision(precision):
    cfg = config.override(tiny_config("gan-mnist"), ["gan.disc_spectral_norm=true"])
    net = networks.discriminator(cfg, precision)
    images = next(iter(synthetic_batches(cfg)))
    logits = net(images, training=True)  # a training call rewrites each kernel as W / sigma
    assert logits.dtype == "float32"
    half = "bfloat16" if precision == "mixed_bfloat16" else "float16"
    for layer in net.layers:
        if isinstance(layer, keras.layers.SpectralNormalization):
            kernel = layer.layer.kernel.numpy()
            assert kernel.dtype == np.float32
            rounded = keras.ops.convert_to_numpy(
                keras.ops.cast(keras.ops.cast(kernel, half), "float32")
            )
            assert not np.array_equal(kernel, rounded)  # not rounded to half precision
