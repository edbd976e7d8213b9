"""Forward + backward milliseconds of each layer of a preset's networks, one layer at a time.

`make profile` sums op time by kind; this names the layer, which is what a cheaper step has to
change. Each layer is timed alone in its own `tf.function` on a random batch: its output, the
sum of its squares, and the gradients with respect to its input and its trainable weights (the
discriminator's layers need the input gradient for the generator's update). Not a test.

    python -m benchmarks.bench_layers gan-mnist [--batch B] [--calls 5] [--reps 50]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from gan_vae_tf import console, errors


def _median_ms(step, x, calls: int, reps: int) -> float:
    step(x)
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        for _ in range(reps):
            step(x)
        times.append((time.perf_counter() - start) / reps * 1e3)
    return float(np.median(times))


def _timed_step(layer):
    import tensorflow as tf

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(tf.square(tf.cast(y, "float32")))
        return tape.gradient(loss, [x, *layer.trainable_weights])

    return step


def call_overhead_ms(batch: int, calls: int = 5, reps: int = 50) -> float:
    """The same measurement of an identity layer: what every row includes besides its layer."""
    import keras

    x = keras.random.normal((batch, 8), seed=0)
    return _median_ms(_timed_step(keras.layers.Identity()), x, calls, reps)


def layer_costs(net, batch: int, calls: int = 5, reps: int = 50) -> list[dict]:
    """One row per layer of `net`: name, class, input and output shapes, median ms per call."""
    import keras

    x = keras.random.normal((batch, *net.input_shape[1:]), seed=0)
    rows = []
    for layer in net.layers:
        ms = _median_ms(_timed_step(layer), x, calls, reps)
        y = layer(x, training=False)
        rows.append(
            {
                "network": net.name,
                "layer": layer.name,
                "kind": type(layer).__name__,
                "input": tuple(x.shape[1:]),
                "output": tuple(y.shape[1:]),
                "ms": ms,
            }
        )
        x = y
    return rows


def table(rows: list[dict]) -> str:
    total = sum(r["ms"] for r in rows)
    lines = [
        "| network | layer | kind | input | output | ms fwd+bwd | share of the rows |",
        "|---" * 7 + "|",
    ]
    for r in rows:
        lines.append(
            f"| {r['network']} | {r['layer']} | {r['kind']} | {r['input']} | {r['output']} "
            f"| {r['ms']:.3f} | {r['ms'] / total:.0%} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("preset", help="preset or preset:section.key=value,...")
    p.add_argument("--batch", type=int, help="default: the preset's batch size")
    p.add_argument("--calls", type=int, default=5, help="timed calls per layer (median)")
    p.add_argument("--reps", type=int, default=50, help="steps per timed call")
    args = p.parse_args(argv)
    console.setup()
    import tensorflow as tf

    from benchmarks import common  # imports Keras, so after the console set-up

    cfg = common.arm_config(args.preset, seed=0)
    tf.get_logger().setLevel("ERROR")  # one trace per layer is the design, not a retracing bug
    model, policy, _ = common.build_arm(cfg)
    batch = args.batch or cfg.train.batch_size
    rows = []
    for net in model.networks().values():
        if net.trainable:  # not the generator EMA: the same layers, moved by no optimizer
            rows += layer_costs(net, batch, args.calls, args.reps)
    overhead = call_overhead_ms(batch, args.calls, args.reps)
    print(
        f"{args.preset}: batch {batch}, {policy}, {common.cpu_name()}; median of {args.calls} "
        f"calls of {args.reps} steps, each layer alone; an identity layer measures "
        f"{overhead:.3f} ms (call overhead, included in every row)"
    )
    print(table(rows))
    return 0


if __name__ == "__main__":
    errors.exit_with(main)
