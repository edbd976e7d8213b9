"""Choosing a `tf.distribute` strategy; Keras' fit() then runs the models' steps per replica.

`mirrored`: every GPU of one host (or every logical CPU device). `multiworker`: several hosts,
described by the `TF_CONFIG` environment variable; without it, a single worker.
"""
from __future__ import annotations

import logging

import tensorflow as tf

from gan_vae_tf.errors import UserError

STRATEGIES = ("default", "mirrored", "multiworker")
log = logging.getLogger(__name__)


def make(name: str) -> tf.distribute.Strategy:
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        devices = [d.name for d in tf.config.list_logical_devices("GPU")] or \
                  [d.name for d in tf.config.list_logical_devices("CPU")]
        strategy = tf.distribute.MirroredStrategy(devices)
    elif name == "multiworker":
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    else:
        raise UserError(f"strategy must be one of {', '.join(STRATEGIES)}, got {name!r}")
    log.info("strategy: %s over %d replicas", name, strategy.num_replicas_in_sync)
    return strategy


def split_cpu(n: int) -> None:
    """Expose the CPU as `n` logical devices (before TensorFlow starts), to run `mirrored`
    on a machine without GPUs: how the tests check that mirrored matches single-device."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * n)
