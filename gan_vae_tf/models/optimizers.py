"""Optimizers from a run's config, their learning-rate schedule, and one update under any
precision or `tf.distribute` strategy."""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

from gan_vae_tf.config import TrainConfig


@keras.saving.register_keras_serializable(package="gan_vae_tf")
class LinearTail(keras.optimizers.schedules.LearningRateSchedule):
    """A constant learning rate that falls linearly to zero over the last `decay_steps` of a
    run of `total_steps`: the late small steps settle the weights the EMA averages."""

    def __init__(self, learning_rate: float, total_steps: int, decay_steps: int):
        if not 0 < decay_steps <= total_steps:
            raise ValueError(f"decay_steps must be in (0, {total_steps}], got {decay_steps}")
        self.learning_rate = float(learning_rate)
        self.total_steps = int(total_steps)
        self.decay_steps = int(decay_steps)

    def __call__(self, step):
        left = ops.cast(self.total_steps, "float32") - ops.cast(step, "float32")
        return self.learning_rate * ops.clip(left / self.decay_steps, 0.0, 1.0)

    def get_config(self) -> dict:
        return {
            "learning_rate": self.learning_rate,
            "total_steps": self.total_steps,
            "decay_steps": self.decay_steps,
        }


def adam(learning_rate, beta_1: float = 0.9, beta_2: float = 0.999) -> keras.optimizers.Optimizer:
    return keras.optimizers.Adam(learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2)


def run_adam(
    train: TrainConfig, total_steps: int | None, learning_rate: float | None = None
) -> keras.optimizers.Optimizer:
    """Adam with the run's betas at `learning_rate` (else `train.learning_rate`): held, or with
    `train.lr_decay` > 0 a `LinearTail` over the run's `total_steps`."""
    rate = train.learning_rate if learning_rate is None else learning_rate
    if train.lr_decay:
        if not total_steps:
            raise ValueError("a learning-rate decay needs the run's total number of steps")
        rate = LinearTail(rate, total_steps, max(1, round(train.lr_decay * total_steps)))
    return adam(rate, train.beta_1, train.beta_2)


def scaled_loss(optimizer, loss):
    """The loss to differentiate. Divided by the number of replicas, because the optimizer sums
    replica gradients (each replica's loss is a mean over its share of the global batch), and
    multiplied by the loss scale under mixed_float16. Must be called inside the GradientTape,
    so the tape records both."""
    loss = loss / tf.distribute.get_strategy().num_replicas_in_sync
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return optimizer.scale_loss(loss)
    return loss


def loss_scale(optimizer):
    """The factor `scaled_loss` multiplied by (1.0 without a loss scaler)."""
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return optimizer.dynamic_scale
    return 1.0


def apply_gradients(grads, optimizer, variables):
    """One update from gradients taken at the optimizer's loss scale; a LossScaleOptimizer
    unscales them and skips non-finite steps. Returns 1.0 for a step the loss scaler skipped,
    else 0.0: a skip is the only thing that lowers the loss scale, so comparing it before and
    after costs no second pass over the gradients."""
    if not isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        optimizer.apply(grads, variables)
        return 0.0
    scale_before = ops.add(optimizer.dynamic_scale, 0.0)  # a copy, not an alias of the variable
    optimizer.apply(grads, variables)
    return ops.cast(ops.less(optimizer.dynamic_scale, scale_before), "float32")


def apply_loss(tape: tf.GradientTape, scaled, optimizer, variables):
    """`apply_gradients` of a loss `scaled_loss` returned inside `tape`."""
    return apply_gradients(tape.gradient(scaled, variables), optimizer, variables)
