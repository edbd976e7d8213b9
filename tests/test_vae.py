"""The VAE: reparameterization, the ELBO and its terms, reconstruction, KL warm-up, a learned
observation scale."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from gan_vae_tf import config, data, kinds, losses
from gan_vae_tf.layers import Reparameterize
from helpers import synthetic_batches, tiny_config


def test_reparameterization_noise_is_fresh_on_every_call_inside_one_compiled_step():
    layer = Reparameterize(seed=3)
    mean, logvar = tf.zeros((4, 2)), tf.zeros((4, 2))

    @tf.function
    def twice():
        return layer(mean, logvar), layer(mean, logvar)

    a, b = twice()
    c, _ = twice()
    assert not np.allclose(a, b) and not np.allclose(a, c)


def test_reparameterization_uses_the_variance_not_the_log_variance():
    layer = Reparameterize(seed=0)
    z = layer(tf.fill((20000, 1), 3.0), tf.fill((20000, 1), float(np.log(4.0)))).numpy()
    assert abs(z.mean() - 3.0) < 0.05 and abs(z.std() - 2.0) < 0.05


def _standard_normal_vae():
    cfg = config.override(tiny_config("vae-mnist"), ["vae.prior_components=0"])
    return cfg, kinds.build(cfg)


def test_vae_loss_is_the_negative_elbo_and_kl_is_nonnegative():
    """Under N(0, I), whose KL is in closed form (a mixture prior's is an estimate)."""
    cfg, model = _standard_normal_vae()
    x = next(iter(synthetic_batches(cfg)))
    elbo, log_px_z, kl = model.elbo_terms(x)
    assert elbo.shape == (8,) and np.all(kl.numpy() >= 0)
    np.testing.assert_allclose(elbo.numpy(), (log_px_z - kl).numpy(), rtol=1e-6)
    logs = model.test_step(x)
    assert logs["loss"].numpy() == pytest.approx(-elbo.numpy().mean(), rel=1e-3, abs=1.0)


def test_vae_reconstruction_decodes_the_posterior_mean():
    cfg = tiny_config("vae-mnist")
    model = kinds.build(cfg)
    x = data.PixelRange(0.0, 1.0, binarize=True).scale(data.synthetic(20).train[:4])
    mean, _ = model.encode(x)
    np.testing.assert_allclose(
        model.reconstruct(x).numpy(), tf.sigmoid(model.decode(mean)).numpy(), rtol=1e-6
    )


def _warmup_vae(warmup: int):
    cfg = config.override(tiny_config("vae-mnist"), [f"vae.kl_warmup={warmup}"])
    return cfg, kinds.build(cfg)


def test_kl_warmup_weighs_the_kl_by_the_step_over_the_warmup_and_logs_the_true_elbo():
    cfg, model = _warmup_vae(4)
    step = tf.function(model.train_step)
    weights = []
    for batch in list(synthetic_batches(cfg, 64))[:6]:
        weights.append(float(model.kl_weight()))
        logs = step(batch)
    assert weights == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]
    x = next(iter(synthetic_batches(cfg)))
    elbo, log_px_z, kl = model.elbo_terms(x)
    np.testing.assert_allclose(elbo.numpy(), (log_px_z - kl).numpy(), rtol=1e-6)
    assert float(logs["kl_weight"]) == pytest.approx(np.mean(weights), rel=1e-6)


def test_kl_warmup_of_zero_trains_on_the_elbo_itself():
    cfg, model = _warmup_vae(0)
    assert model.kl_weight() == 1.0 and "kl_weight" not in model.trackers
    logs = model.train_step(next(iter(synthetic_batches(cfg))))
    assert float(logs["loss"]) == pytest.approx(-float(logs["elbo"]), rel=1e-6)


@pytest.mark.slow
def test_kl_warmup_continues_its_schedule_exactly_across_a_mid_epoch_resume(
    tmp_path, mnist_dir, monkeypatch
):
    """A run stopped by SIGTERM in the middle of its second epoch and resumed logs the same
    losses, KL weights included, as the run that was never stopped."""
    import os
    import signal

    from gan_vae_tf import callbacks, train
    from helpers import train_args

    def args(run):
        return train_args(
            "vae-mnist", mnist_dir, run, "--set", "vae.kl_warmup=9", "--deterministic",
            "--set", "train.steps_per_execution=1", "--checkpoint-every", "0", epochs=3,
        )  # fmt: skip

    assert train.main(args(tmp_path / "whole")) == 0
    seen = {"steps": 0}
    guard = callbacks.NonFiniteGuard.on_train_batch_end

    def signal_at_step_8(self, batch, logs=None):
        guard(self, batch, logs)
        seen["steps"] += 1
        if seen["steps"] == 8:  # epochs of 6 steps: the second step of epoch 2
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(callbacks.NonFiniteGuard, "on_train_batch_end", signal_at_step_8)
    assert train.main(args(tmp_path / "split")) == 128 + signal.SIGTERM
    monkeypatch.setattr(callbacks.NonFiniteGuard, "on_train_batch_end", guard)
    assert train.main(["--resume", str(tmp_path / "split"), "--progress", "none"]) == 0

    def losses(run):
        rows = (run / "history.csv").read_text().splitlines()
        return [",".join(row.split(",")[:1] + row.split(",")[2:]) for row in rows]

    whole = losses(tmp_path / "whole")
    assert "kl_weight" in whole[0] and len(whole) == 4
    assert losses(tmp_path / "split") == whole


def test_a_learned_observation_scale_is_a_weight_the_elbo_trains():
    cfg = config.override(
        tiny_config("vae-anime"), ["vae.learn_obs_sigma=true", "train.learning_rate=0.05"]
    )
    model = kinds.build(cfg)
    assert float(model.obs_sigma) == pytest.approx(cfg.vae.obs_sigma, rel=1e-6)
    assert any(v is model.log_obs_sigma for v in model.trainable_variables)
    logs = model.train_step(next(iter(synthetic_batches(cfg, 16))))
    assert float(model.obs_sigma) != pytest.approx(cfg.vae.obs_sigma, rel=1e-3)
    assert float(logs["obs_sigma"]) == pytest.approx(float(model.obs_sigma), rel=1e-6)


def test_a_learned_observation_scale_survives_keras_files(tmp_path):
    cfg = config.override(tiny_config("vae-anime"), ["vae.learn_obs_sigma=true"])
    model = kinds.build(cfg)
    model.log_obs_sigma.assign(-1.5)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert float(loaded.obs_sigma) == pytest.approx(np.exp(-1.5), rel=1e-6)


def test_the_gaussian_with_any_scale_is_a_density_and_its_bounds_are_ordered():
    """Hand-checked: one pixel, mean 0.3, sigma 0.2 (a tensor, as when learned): the log-density
    at 0.5 is -0.5 - log 0.2 - log(2 pi) / 2, and the density integrates to 1. A VAE with a
    learned scale keeps ELBO <= IWAE on every image, and a Bernoulli VAE has both <= 0."""
    sigma = tf.constant(0.2)
    at = losses.gaussian_log_prob(np.full((1, 1), 0.5), np.full((1, 1), 0.3), sigma)
    assert float(at[0]) == pytest.approx(-0.5 - np.log(0.2) - 0.5 * np.log(2 * np.pi), rel=1e-6)
    grid, step = np.linspace(-2.0, 2.6, 20001, retstep=True)  # 0.3 +- 11.5 sigma
    density = np.exp(losses.gaussian_log_prob(grid[:, None], np.full((20001, 1), 0.3), sigma))
    assert float(np.sum(density, dtype=np.float64) * step) == pytest.approx(1.0, abs=1e-5)
    for preset, sets in (("vae-anime", ["vae.learn_obs_sigma=true"]), ("vae-mnist", [])):
        cfg = config.override(tiny_config(preset), sets)
        model = kinds.build(cfg)
        x = next(iter(synthetic_batches(cfg, 16)))
        log_w = model.log_importance_weights(x, 64).numpy()
        elbo = log_w.mean(axis=1)
        iwae = np.log(np.mean(np.exp(log_w - log_w.max(axis=1, keepdims=True)), axis=1))
        iwae += log_w.max(axis=1)
        assert np.all(elbo <= iwae + 1e-4)
        if preset == "vae-mnist":
            assert np.all(iwae <= 0.0)


def _mixture_vae(components: int = 3):
    cfg = config.override(tiny_config("vae-mnist"), [f"vae.prior_components={components}"])
    return cfg, kinds.build(cfg)


def test_a_mixture_prior_draws_its_components_by_their_weights_from_normal_noise():
    """Three far-apart components weighted 0.6 / 0.3 / 0.1 with std 0.1: each draw lies near
    one mean, the shares follow the weights, and the same noise gives the same draws."""
    cfg, model = _mixture_vae(3)
    latent = cfg.vae.latent_dim
    assert model.noise_size == latent + 1 == kinds.of(cfg).noise_size(cfg)
    centres = np.array([[-10.0], [0.0], [10.0]], "float32") * np.ones((1, latent), "float32")
    model.prior.means.assign(centres)
    model.prior.logvars.assign(np.full((3, latent), np.log(0.01), "float32"))
    model.prior.logits.assign(np.log(np.array([0.6, 0.3, 0.1], "float32")))
    noise = np.random.default_rng(0).standard_normal((20000, latent + 1)).astype("float32")
    z = model.prior_codes(noise).numpy()
    nearest = np.argmin(np.abs(z[:, :1] - centres[:, 0][None]), axis=1)
    assert np.max(np.abs(z - centres[nearest])) < 1.0
    shares = np.bincount(nearest, minlength=3) / 20000
    np.testing.assert_allclose(shares, [0.6, 0.3, 0.1], atol=0.015)
    np.testing.assert_array_equal(model.prior_codes(noise[:5]).numpy(), z[:5])
    assert model.sample(7).shape == (7, 28, 28, 1)


def test_a_mixture_prior_trains_with_the_elbo_and_keeps_elbo_below_iwae(tmp_path):
    """Its means, variances and weights are weights the ELBO's gradient moves; ELBO <= IWAE
    <= 0 (Bernoulli); and a .keras file keeps the learned prior."""
    cfg, model = _mixture_vae(4)
    prior = {id(v) for v in (model.prior.means, model.prior.logvars, model.prior.logits)}
    assert prior <= {id(v) for v in model.trainable_variables}
    before = model.prior.means.numpy().copy()
    x = next(iter(synthetic_batches(cfg, 16)))
    model.train_step(x)
    assert not np.allclose(model.prior.means.numpy(), before)
    log_w = model.log_importance_weights(x, 64).numpy()
    iwae = np.log(np.mean(np.exp(log_w - log_w.max(axis=1, keepdims=True)), axis=1))
    iwae += log_w.max(axis=1)
    assert np.all(log_w.mean(axis=1) <= iwae + 1e-4) and np.all(iwae <= 0.0)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    for name in ("means", "logvars", "logits"):
        np.testing.assert_array_equal(
            getattr(loaded.prior, name).numpy(), getattr(model.prior, name).numpy()
        )


def test_the_sample_grid_draws_its_fixed_noise_through_the_learned_prior():
    cfg, model = _mixture_vae(5)
    kind = kinds.of(cfg)
    inputs = kind.grid_inputs(cfg, data.synthetic(20), np.random.default_rng(0))
    assert inputs["z"].shape == (cfg.train.sample_grid**2, cfg.vae.latent_dim + 1)
    z = model.prior_codes(inputs["z"])
    first = tf.sigmoid(model.decode(z[:1])).numpy()[0]
    grid = kind.draw_grid(model, inputs)
    tile = grid[2 : 2 + 28, 2 : 2 + 28]  # the grid's first image, after its 2-pixel border
    np.testing.assert_allclose(tile[..., 0] / 255.0, first[..., 0], atol=1 / 255 + 1e-6)


def test_the_standard_normal_prior_keeps_its_closed_form_kl():
    _, model = _standard_normal_vae()
    mean, logvar = tf.constant([[0.5, -1.0]]), tf.constant([[0.2, -0.3]])
    expected = 0.5 * np.sum(
        np.exp([0.2, -0.3]) + np.square([0.5, -1.0]) - 1 - np.array([0.2, -0.3])
    )
    assert float(model.kl(tf.zeros((1, 2)), mean, logvar)[0]) == pytest.approx(expected, rel=1e-5)
