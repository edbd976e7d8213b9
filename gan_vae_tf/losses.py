"""Losses and log-densities as pure functions of float32 tensors.

Everything is computed in float32 whatever the layers' compute dtype, and reduced per image:
callers decide how to average, so the same functions serve training and evaluation.
"""

from __future__ import annotations

import math

from keras import ops

LOG_2PI = math.log(2.0 * math.pi)


def _f32(x):
    return ops.cast(x, "float32")


def _sum_per_image(x):
    return ops.sum(ops.reshape(x, (ops.shape(x)[0], -1)), axis=1)


def _bce(labels, logits):
    """Elementwise binary cross-entropy from logits (Keras' stable form), in float32."""
    return ops.binary_crossentropy(_f32(labels), _f32(logits), from_logits=True)


def discriminator_loss(real_logits, fake_logits, real_label: float = 1.0):
    """Mean BCE of calling real images real (`real_label`: 1, or less for one-sided label
    smoothing) and generated images fake (0)."""
    return ops.mean(_bce(ops.full_like(_f32(real_logits), real_label), real_logits)) + ops.mean(
        _bce(ops.zeros_like(fake_logits), fake_logits)
    )


def generator_loss(fake_logits):
    """The non-saturating generator loss: BCE of the discriminator calling fakes real."""
    return ops.mean(_bce(ops.ones_like(fake_logits), fake_logits))


def gradient_penalty(grads):
    """Mean over images of the squared L2 norm of `grads` (R1: the discriminator's gradient at
    real images; the caller weighs it by gamma / 2)."""
    return ops.mean(_sum_per_image(ops.square(_f32(grads))))


def bernoulli_log_prob(x, logits):
    """log p(x | logits) summed over pixels, for binary x."""
    return -_sum_per_image(_bce(x, logits))


def gaussian_log_prob(x, mean, sigma):
    """log N(x; mean, sigma^2 I) summed over pixels: a density on continuous pixel values.
    `sigma` is a number or a scalar tensor (a learned scale)."""
    x, mean, sigma = _f32(x), _f32(mean), _f32(sigma)
    per_pixel = -0.5 * ops.square((x - mean) / sigma) - ops.log(sigma) - 0.5 * LOG_2PI
    return _sum_per_image(per_pixel)


def normal_log_prob(z, mean, logvar):
    """log N(z; mean, exp(logvar)) summed over latent dimensions."""
    z, mean, logvar = _f32(z), _f32(mean), _f32(logvar)
    return ops.sum(-0.5 * (ops.square(z - mean) * ops.exp(-logvar) + logvar + LOG_2PI), axis=1)


def mixture_log_prob(z, means, logvars, logits):
    """log sum_k softmax(logits)_k N(z; means_k, exp(logvars_k)) for each row of z: the
    density of a mixture of K diagonal Gaussians, `means`/`logvars` of shape (K, latent)."""
    z, means, logvars = _f32(z)[:, None, :], _f32(means)[None], _f32(logvars)[None]
    per_component = ops.sum(
        -0.5 * (ops.square(z - means) * ops.exp(-logvars) + logvars + LOG_2PI), axis=-1
    )
    return ops.logsumexp(per_component + ops.log_softmax(_f32(logits))[None], axis=1)


def kl_to_standard_normal(mean, logvar):
    """KL(N(mean, exp(logvar)) || N(0, I)) in closed form, per example."""
    mean, logvar = _f32(mean), _f32(logvar)
    return 0.5 * ops.sum(ops.exp(logvar) + ops.square(mean) - 1.0 - logvar, axis=1)


def reconstruction_log_prob(x, logits, likelihood: str, sigma=0.1):
    """log p(x | z) for the decoder's logits under the configured pixel likelihood."""
    if likelihood == "bernoulli":
        return bernoulli_log_prob(x, logits)
    if likelihood == "gaussian":
        return gaussian_log_prob(x, ops.sigmoid(_f32(logits)), sigma)
    raise ValueError(f"unknown likelihood {likelihood!r}")
