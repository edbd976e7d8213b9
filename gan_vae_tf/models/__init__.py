"""Keras models that own their train/test steps, optimizers and metric trackers.

`fit()` compiles `train_step` with `tf.function`; both steps read their randomness from
`SeedGenerator`s, so every compiled step draws fresh noise. Under `mixed_float16` each
optimizer is a `LossScaleOptimizer` and the step scales its own loss with `scale_loss`;
losses and log-densities are float32 under every policy.

This package imports only Keras, TensorFlow and the modules below it (`config`, `losses`,
`layers`): building a model from a run's config, sampling it for a picture and evaluating it
are `kinds`' and `evaluation`'s business.
"""

from gan_vae_tf.models.base import MultiOptimizerModel
from gan_vae_tf.models.dcgan import DCGAN, copy_network, update_average
from gan_vae_tf.models.optimizers import LinearTail, adam, run_adam
from gan_vae_tf.models.vae import VAE

__all__ = [
    "DCGAN",
    "VAE",
    "LinearTail",
    "MultiOptimizerModel",
    "adam",
    "copy_network",
    "run_adam",
    "update_average",
]
