"""Small serializable layers shared by the models."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="gan_vae_tf")
class Reparameterize(keras.layers.Layer):
    """z = mean + exp(logvar / 2) * eps with eps ~ N(0, I).

    The noise comes from a `SeedGenerator`, whose state is a variable that advances on every
    call, so a compiled train step draws fresh noise each time instead of a constant baked in
    at trace time. Runs in float32 so the variance never under- or overflows in half precision.
    """

    def __init__(self, seed: int | None = None, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, mean, logvar):
        mean = ops.cast(mean, "float32")
        logvar = ops.cast(logvar, "float32")
        eps = keras.random.normal(ops.shape(mean), seed=self.seed_generator)
        return mean + ops.exp(0.5 * logvar) * eps

    def compute_output_shape(self, mean_shape, logvar_shape):
        return mean_shape

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}
