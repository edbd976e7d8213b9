"""`MultiOptimizerModel`: what the DCGAN and the VAE share as Keras models."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import keras

from gan_vae_tf.config import section_from_dict
from gan_vae_tf.models import optimizers


class MultiOptimizerModel(keras.Model):
    """A model trained by several optimizers, one per network, in its own `train_step`.

    It adds to `keras.Model`: a `compile()` that takes one optimizer per trained network (and
    is restored from `.keras` files), metric trackers that reset each epoch, a count of the
    steps a loss scaler skipped (mixed_float16 overflow: logged, not a failure), and
    serialization of its networks and of its options, a frozen config section such as
    `GANConfig`. Checkpoints and diagrams iterate over `networks()` and `optimizers()`, so
    they never ask which model they hold.
    """

    trackers: dict[str, keras.metrics.Metric]
    #: Names of the optimizers `compile()` takes, one per trained network (checkpoint keys).
    optimizer_names: ClassVar[tuple[str, ...]] = ()
    #: The constructor arguments that are networks, serialized in `get_config()`.
    network_keys: ClassVar[tuple[str, ...]] = ()
    #: The config section the model's `options` are (serialized as a plain dict).
    options_class: ClassVar[type]

    def __init__(self, options=None, seed: int | None = None, **kwargs):
        """`options`: the config section the model reads (`options_class()` when None);
        `seed`: the seed of its random streams; the rest goes to `keras.Model`."""
        super().__init__(**kwargs)
        self.options = options or self.options_class()
        self.seed = seed

    def networks(self) -> dict[str, keras.Model]:
        """The networks this model is made of, by name (the `.keras` file stems)."""
        raise NotImplementedError

    def _trained_variables(self, name: str) -> list:
        """The variables the optimizer called `name` updates."""
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        nets = {
            key: None if net is None else keras.saving.serialize_keras_object(net)
            for key in self.network_keys
            for net in [getattr(self, key)]
        }
        options = dataclasses.asdict(self.options)
        return {**super().get_config(), **nets, "options": options, "seed": self.seed}

    @classmethod
    def from_config(cls, config):
        """`get_config()`'s form, and that of files written before the options were one
        section (each option a key of its own, e.g. `ema_decay`)."""
        config = dict(config)
        for key in cls.network_keys:
            if config.get(key) is not None:
                config[key] = keras.saving.deserialize_keras_object(config[key])
        names = [f.name for f in dataclasses.fields(cls.options_class)]
        older = {name: config.pop(name) for name in names if name in config}
        options = {**older, **(config.pop("options", None) or {})}
        return cls(**config, options=section_from_dict(cls.options_class, options))

    def optimizers(self) -> dict[str, keras.optimizers.Optimizer]:
        return {name: getattr(self, name) for name in self.optimizer_names}

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
