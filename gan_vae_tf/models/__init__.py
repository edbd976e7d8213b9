"""Keras models that own their train/test steps, optimizers and metric trackers.

`fit()` compiles `train_step` with `tf.function`; both steps read their randomness from
`SeedGenerator`s, so every compiled step draws fresh noise. Under `mixed_float16` each
optimizer is a `LossScaleOptimizer` and the step scales its own loss with `scale_loss`;
losses and log-densities are float32 under every policy.
"""

from __future__ import annotations

import logging

import keras
import tensorflow as tf

from gan_vae_tf.models.base import MultiOptimizerModel, grid_codes
from gan_vae_tf.models.dcgan import DCGAN, copy_network, update_average
from gan_vae_tf.models.optimizers import LinearTail, adam, run_adam
from gan_vae_tf.models.vae import VAE

log = logging.getLogger(__name__)

__all__ = [
    "DCGAN",
    "VAE",
    "LinearTail",
    "MultiOptimizerModel",
    "adam",
    "build",
    "copy_network",
    "grid_codes",
    "run_adam",
    "steps_per_execution",
    "update_average",
]

MODELS: dict[str, type[MultiOptimizerModel]] = {"gan": DCGAN, "vae": VAE}


def steps_per_execution(cfg) -> int:
    """The config's train steps per compiled call, or 1 under any tf.distribute strategy:
    Keras 3 runs each step of a multi-step call inside a `tf.cond`, where the optimizer's
    cross-replica `merge_call` fails ("You must feed a value for placeholder tensor",
    keras-team/keras#19246; a one-device MirroredStrategy merges too). The steps compute the
    same either way; only speed differs, and the log says so."""
    steps = cfg.train.steps_per_execution
    if steps > 1 and tf.distribute.has_strategy():
        strategy = tf.distribute.get_strategy()
        log.info(
            "steps per execution: 1 instead of %d under %s over %d replicas",
            steps,
            type(strategy).__name__,
            strategy.num_replicas_in_sync,
        )
        return 1
    return steps


def build(cfg, policy: str = "float32", steps_per_epoch: int | None = None) -> keras.Model:
    """The compiled model a config describes, with layers under the given dtype policy.
    `steps_per_epoch` (else the config's) sizes a learning-rate decay over the whole run."""
    model = MODELS[cfg.model].from_run_config(cfg, policy)
    per_epoch = steps_per_epoch or cfg.train.steps_per_epoch
    total = cfg.train.epochs * per_epoch if per_epoch else None
    model.compile(
        **model.run_optimizers(cfg, total),
        loss_scale=policy == "mixed_float16",
        steps_per_execution=steps_per_execution(cfg),
    )
    return model
