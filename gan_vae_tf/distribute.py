"""Choosing a `tf.distribute` strategy; Keras' fit() then runs the models' steps per replica.

`mirrored`: every GPU of one host (or every logical CPU device). `multiworker`: several hosts,
described by the `TF_CONFIG` environment variable; without it, a single worker. TensorFlow is
imported inside the functions: `train`'s command line asks how many workers a run has before
`console.setup()` has imported TensorFlow quietly.
"""

from __future__ import annotations

import json
import logging
import os
import re

from gan_vae_tf.errors import UserError

STRATEGIES = ("default", "mirrored", "multiworker")
log = logging.getLogger(__name__)


def _tf_config() -> dict:
    try:
        return json.loads(os.environ.get("TF_CONFIG") or "{}")
    except ValueError:
        raise UserError("TF_CONFIG is not valid JSON") from None


def cluster_size(name: str) -> int:
    """How many processes a run of strategy `name` trains in: the chief and worker tasks of
    TF_CONFIG under multiworker, else 1. Known before TensorFlow starts."""
    if name != "multiworker":
        return 1
    cluster = _tf_config().get("cluster") or {}
    return max(1, sum(len(cluster.get(job) or []) for job in ("chief", "worker")))


def is_chief(name: str) -> bool:
    """Whether this process writes the run directory: always, except under `multiworker` for
    every task of TF_CONFIG but the chief (the `chief` task, or worker 0 of a cluster without
    one). The others train the same steps but write only to a temporary folder."""
    if name != "multiworker":
        return True
    tf_config = _tf_config()
    task, cluster = tf_config.get("task") or {}, tf_config.get("cluster") or {}
    if not task:
        return True
    if task.get("type") == "chief":
        return True
    return (
        task.get("type") == "worker" and int(task.get("index", 0)) == 0 and "chief" not in cluster
    )


def make(name: str):
    """The tf.distribute.Strategy called `name`. Create it before any other TensorFlow op:
    `multiworker` configures the collective ops at program start."""
    import tensorflow as tf

    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        devices = [d.name for d in tf.config.list_logical_devices("GPU")] or [
            d.name for d in tf.config.list_logical_devices("CPU")
        ]
        strategy = tf.distribute.MirroredStrategy(devices)
    elif name == "multiworker":
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        _reduce_scalar_logs_over_replicas()
    else:
        raise UserError(f"strategy must be one of {', '.join(STRATEGIES)}, got {name!r}")
    log.info("strategy: %s over %d replicas", name, strategy.num_replicas_in_sync)
    return strategy


def split_cpu(n: int) -> None:
    """Expose the CPU as `n` logical devices (before TensorFlow starts), to run `mirrored`
    on a machine without GPUs: how the tests check that mirrored matches single-device."""
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * n)


def _reduce_scalar_logs_over_replicas() -> None:
    """Keras 3's fit() under MultiWorkerMirroredStrategy reduces each step's logs with
    `strategy.reduce("MEAN", v, axis=0)`, which fails for the scalar losses every train_step
    returns ("Invalid reduction dimension 0 for input with 0 dimensions",
    tensorflow/tensorflow#72388). Reduce scalars over replicas only (axis=None). The epoch's
    logged means do not depend on this: fit() reads them from the metric trackers, which sum
    over every worker."""
    from keras.src.backend.tensorflow import trainer

    original = trainer.reduce_per_replica
    if getattr(original, "scalar_safe", False):
        return

    def reduce_per_replica(values, strategy, reduction):
        if reduction in ("auto", "mean") and trainer._collective_all_reduce_multi_worker(strategy):
            import tensorflow as tf

            def mean(v):
                local = (
                    strategy.experimental_local_results(v)[0]
                    if trainer._is_per_replica_instance(v)
                    else v
                )
                if getattr(local, "shape", None) is not None and local.shape.rank == 0:
                    return strategy.reduce("MEAN", v, axis=None)
                return strategy.reduce("MEAN", v, axis=0)

            return tf.nest.map_structure(mean, values)
        return original(values, strategy, reduction)

    reduce_per_replica.scalar_safe = True
    trainer.reduce_per_replica = reduce_per_replica


def cluster_errors() -> tuple[type, ...]:
    """The TensorFlow errors a collective raises when a peer worker dies or hangs."""
    import tensorflow as tf

    return (
        tf.errors.UnavailableError,
        tf.errors.AbortedError,
        tf.errors.CancelledError,
        tf.errors.DeadlineExceededError,
    )


def cluster_error_reason(error: Exception) -> str:
    """The line of a collective's error that says what happened to the peer ("Connection
    refused", "tasks are unhealthy (stopped sending heartbeats): /job:worker/...: 1"), without
    the graph-execution preamble and Python stack TensorFlow puts before it."""
    lines = [line.strip() for line in (getattr(error, "message", None) or str(error)).splitlines()]
    skip = ("Graph execution error", "Detected at node", "File ", "[[", "Additional GRPC")
    useful = [
        line
        for line in lines
        if line and not line.startswith(skip) and not line.endswith("(most recent call last):")
    ]
    if not useful:
        return type(error).__name__
    reason = useful[0]
    if reason.endswith(":") and len(useful) > 1:
        reason = f"{reason} {useful[1]}"
    reason = re.sub(r"^\{\{function_node [^}]*\}\}\s*", "", reason)
    return re.sub(r"\s*\[(type\.googleapis|Op:).*$", "", reason)


def num_workers(strategy) -> int:
    """How many processes train together: the tasks of TF_CONFIG's cluster under multiworker,
    else 1."""
    resolver = getattr(strategy, "cluster_resolver", None)
    spec = resolver.cluster_spec() if resolver is not None else None
    if not spec or not spec.jobs:
        return 1
    return sum(spec.num_tasks(job) for job in spec.jobs if job in ("chief", "worker"))


def agreement(strategy):
    """For several workers, a function every worker calls at the same step boundary with its own
    wishes (flags, e.g. "my clock says save", "I was sent SIGTERM"); it returns, on every
    worker, which flags any worker raised. Checkpoints read the metric totals with collectives
    and a stop must stop everybody, so all workers must save and stop at the same steps. None
    for a single worker, which needs no agreement."""
    if num_workers(strategy) < 2:
        return None
    import tensorflow as tf

    def replica_sum(flags):
        # tf.identity places the flags on the replica's device, where the collective runs.
        return tf.distribute.get_replica_context().all_reduce("SUM", tf.identity(flags))

    @tf.function
    def any_worker(flags):
        return strategy.experimental_local_results(strategy.run(replica_sum, args=(flags,)))[0]

    def agree(*wishes: bool) -> tuple[bool, ...]:
        total = any_worker(tf.constant([float(w) for w in wishes]))
        return tuple(bool(t > 0) for t in total.numpy())

    return agree
