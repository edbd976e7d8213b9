"""Losses and log-densities: pure float32 functions checked against their definitions."""

import numpy as np
import pytest
import tensorflow as tf

from gan_vae_tf import losses


def test_gan_losses_from_logits_match_their_definitions():
    real, fake = tf.constant([[2.0], [-1.0]]), tf.constant([[0.5], [-3.0]])

    def sp(t):  # softplus
        return np.log1p(np.exp(t))

    expected_d = np.mean(sp(-real.numpy())) + np.mean(sp(fake.numpy()))
    assert float(losses.discriminator_loss(real, fake)) == pytest.approx(expected_d, rel=1e-6)
    assert float(losses.generator_loss(fake)) == pytest.approx(np.mean(sp(-fake.numpy())), rel=1e-6)
    assert np.isfinite(float(losses.generator_loss(tf.constant([[-500.0]]))))


def test_gaussian_log_prob_matches_the_closed_form():
    x, mean = np.full((1, 2, 2, 1), 0.3, "float32"), np.full((1, 2, 2, 1), 0.5, "float32")
    sigma = 0.1
    expected = 4 * (-0.5 * (0.2 / sigma) ** 2 - np.log(sigma) - 0.5 * np.log(2 * np.pi))
    assert float(losses.gaussian_log_prob(x, mean, sigma)[0]) == pytest.approx(expected, rel=1e-5)


def test_mixture_log_prob_is_the_log_of_the_weighted_sum_of_normal_densities():
    """Hand-checked in 1-d: components N(-1, 1) and N(2, 0.25) weighted 1/4 and 3/4 (logits
    0 and log 3), at z = 0.5."""
    means = np.array([[-1.0], [2.0]], "float32")
    logvars = np.log(np.array([[1.0], [0.25]], "float32"))
    logits = np.array([0.0, np.log(3.0)], "float32")

    def normal(z, m, var):
        return np.exp(-0.5 * (z - m) ** 2 / var) / np.sqrt(2 * np.pi * var)

    expected = np.log(0.25 * normal(0.5, -1.0, 1.0) + 0.75 * normal(0.5, 2.0, 0.25))
    got = losses.mixture_log_prob(np.array([[0.5]], "float32"), means, logvars, logits)
    assert float(got[0]) == pytest.approx(expected, rel=1e-5)
    one = losses.mixture_log_prob(
        np.array([[0.5, -0.2]], "float32"), np.zeros((1, 2)), np.zeros((1, 2)), np.zeros((1,))
    )
    standard = losses.normal_log_prob(np.array([[0.5, -0.2]]), np.zeros((1, 2)), np.zeros((1, 2)))
    assert float(one[0]) == pytest.approx(float(standard[0]), rel=1e-6)
