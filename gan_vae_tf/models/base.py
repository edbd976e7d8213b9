"""`MultiOptimizerModel`: what the DCGAN and the VAE share as Keras models."""

from __future__ import annotations

import keras
import numpy as np

from gan_vae_tf.models import optimizers


def grid_codes(cfg, rng, dim: int) -> np.ndarray:
    """The fixed normal codes of the per-epoch PNG: `train.sample_grid` squared of them."""
    return rng.standard_normal((cfg.train.sample_grid**2, dim)).astype("float32")


class MultiOptimizerModel(keras.Model):
    """What both models share: a custom `compile()` that takes one optimizer per trained
    network (and is restored from `.keras` files), metric trackers that reset each epoch, and
    a count of the steps a loss scaler skipped (mixed_float16 overflow: logged, not a failure).

    Each model describes itself through `networks()` and `optimizers()`, so checkpoints,
    evaluation, reports and diagrams iterate over them instead of asking what kind it is.
    """

    trackers: dict[str, keras.metrics.Metric]
    #: Names of the optimizers `compile()` takes, one per trained network (checkpoint keys).
    optimizer_names: tuple[str, ...] = ()
    #: The constructor arguments that are networks, serialized in `get_config()`.
    network_keys: tuple[str, ...] = ()
    #: Whether training also reports test-set metrics each epoch (the VAE's test ELBO).
    validates: bool = False

    @classmethod
    def fixed_inputs(cls, cfg, test_images, rng) -> dict:
        """The inputs of the per-epoch sample grid, drawn once per run (and checkpointed), so
        successive epochs show the same samples improving."""
        raise NotImplementedError

    def renderer(self, fixed: dict):
        """A function of the model -> the uint8 sample grid of `fixed`'s inputs."""
        raise NotImplementedError

    def test_metrics(self, cfg, dataset, num: int, iwae_k: int = 0, iwae_images: int = 0) -> dict:
        """What `evaluate` measures of this kind of model on held-out images (the metric
        functions themselves live in evaluate.py and metrics.py)."""
        raise NotImplementedError

    @classmethod
    def describe(cls, cfg) -> tuple[str, str]:
        """(the kind's name, its latent space) for the report's table."""
        raise NotImplementedError

    def networks(self) -> dict[str, keras.Model]:
        """The networks this model is made of, by name (the `.keras` file stems)."""
        raise NotImplementedError

    @classmethod
    def from_config(cls, config):
        """`get_config()` stores each network serialized under its name (None for one the
        model does without, such as a DCGAN's EMA generator when it keeps none)."""
        config = dict(config)
        for key in cls.network_keys:
            if config.get(key) is not None:
                config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)

    def optimizers(self) -> dict[str, keras.optimizers.Optimizer]:
        return {name: getattr(self, name) for name in self.optimizer_names}

    def _trained_variables(self, name: str) -> list:
        raise NotImplementedError

    def compile(
        self, learning_rate: float = 1e-4, beta_1: float = 0.9, loss_scale: bool = False, **kwargs
    ):
        """Optimizers by name (e.g. `g_optimizer=..., d_optimizer=...`); any not given is an
        Adam(learning_rate, beta_1). With `loss_scale` each is wrapped in a
        `LossScaleOptimizer` (mixed_float16)."""
        given = {name: kwargs.pop(name, None) for name in self.optimizer_names}
        super().compile(**kwargs)
        self._loss_scale = loss_scale
        if loss_scale and "skipped_steps" not in self.trackers:
            self.trackers["skipped_steps"] = keras.metrics.Sum(name="skipped_steps")
        for name, opt in given.items():
            opt = opt or optimizers.adam(learning_rate, beta_1)
            if loss_scale and not isinstance(opt, keras.optimizers.LossScaleOptimizer):
                opt = keras.optimizers.LossScaleOptimizer(opt)
            opt.build(self._trained_variables(name))
            setattr(self, name, opt)

    def get_compile_config(self):
        if not self.optimizer_names or not hasattr(self, self.optimizer_names[0]):
            return {}
        return {
            "loss_scale": self._loss_scale,
            **{name: keras.optimizers.serialize(opt) for name, opt in self.optimizers().items()},
        }

    def compile_from_config(self, config):
        """Restores both this version's configs (serialized optimizers) and older ones
        (`learning_rate`/`beta_1`/`loss_scale`, every network with the same Adam)."""
        config = dict(config)
        for name in self.optimizer_names:
            if isinstance(config.get(name), dict):
                config[name] = keras.optimizers.deserialize(config[name])
        self.compile(**config)

    @property
    def metrics(self):
        return list(self.trackers.values())

    def _count_skips(self, *skipped) -> None:
        if "skipped_steps" in self.trackers:
            self.trackers["skipped_steps"].update_state(sum(skipped))
