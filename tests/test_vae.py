"""The VAE: reparameterization, the ELBO and its terms, reconstruction."""

import numpy as np
import pytest
import tensorflow as tf

from gan_vae_tf import data, kinds
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


def test_vae_loss_is_the_negative_elbo_and_kl_is_nonnegative():
    cfg = tiny_config("vae-mnist")
    model = kinds.build(cfg)
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
