"""Training throughput: the project's path against the tutorials' method, side by side.

`make bench` (or `python -m benchmarks.bench` from the repository root) measures, for each preset:
  - project: `kinds.build` + `data.pipeline` (uint8 until the batch, prefetch, auto precision)
    driven by `fit()`;
  - memory: the same project model fed one batch that is already in memory, repeated: if the
    project's rate matches it, the input pipeline never starves the step;
  - baseline: the tutorials' method, written here on purpose as separate code: float32, a
    plain `tf.function` step, `from_tensor_slices(float images).shuffle().batch()`, no prefetch;
and this machine's float32 and bfloat16 matmul peaks, so achieved FLOP/s can be read as a
fraction of them. Each measurement runs in its own subprocess (so peak RSS is its own) and is
repeated, interleaved across methods; the best, median and slowest rates are printed, and
ratios use the best (interference only slows a run down). Timing ends at the last step, not
after `fit()` returns: dropping a tf.data iterator mid-stream waits for its autotune thread's
next wake-up (10 ms x 2^k), which added up to a whole 10.24 s or 40.96 s to some runs. Writes experiments/bench/results.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common import OUT, ROOT, cpu_name, images_for, preset_config, project_model
from gan_vae_tf import console, errors

PRESETS = ("gan-mnist", "vae-mnist", "gan-anime", "vae-anime")
# Timed steps per measurement: about 20-40 s each on a 2-core CPU, long enough for a spread of
# a few percent, short enough that four presets x three methods x repeats fit in ~20 minutes.
STEPS = {"gan-mnist": 24, "vae-mnist": 600, "gan-anime": 10, "vae-anime": 16}
METHODS = ("baseline", "project", "memory")


def forward_macs(model) -> int:
    """Multiply-accumulates of one image through the Dense/Conv layers of a Sequential model."""
    import numpy as np
    from keras import layers

    total = 0
    for layer in model.layers:  # subclasses (the pixel-shuffle forms) count as the function
        if isinstance(layer, layers.Dense):
            total += int(layer.kernel.shape[0]) * int(layer.kernel.shape[1])
        elif isinstance(layer, layers.Conv2D):
            out = layer.output.shape
            total += int(np.prod(out[1:])) * int(np.prod(layer.kernel.shape[:3]))
        elif isinstance(layer, layers.Conv2DTranspose):
            inp = layer.input.shape
            k = layer.kernel.shape  # (kh, kw, out, in)
            total += int(np.prod(inp[1:])) * int(k[0] * k[1] * k[2])
    return total


# Passes over a batch per train step, by network: the discriminator sees the real and the
# generated batch; an EMA generator is averaged, never run, in training.
PASSES = {"generator": 1, "discriminator": 2, "encoder": 1, "decoder": 1}


def train_flops_per_image(cfg) -> float:
    """Forward + backward (about 3x forward) for every network pass a train step makes."""
    from gan_vae_tf import kinds

    nets = kinds.of(cfg).build(cfg).networks()
    return 2.0 * 3.0 * sum(PASSES.get(name, 0) * forward_macs(net) for name, net in nets.items())


def run_project(cfg, images, steps: int, in_memory: bool = False) -> float:
    """The project's defaults, timed from the first step to the end of the last."""
    import keras

    class LastStep(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            self.done = time.perf_counter()

    model, ds, _ = project_model(cfg, images, max(2, steps // 4), in_memory)
    last = LastStep()
    start = time.perf_counter()
    model.fit(ds, epochs=1, steps_per_epoch=steps, verbose=0, callbacks=[last], shuffle=False)
    return steps * cfg.train.batch_size / (last.done - start)


def run_baseline(cfg, images, steps: int) -> float:
    """The tutorials' loop: float32, GradientTape in a tf.function, no prefetch."""
    import tensorflow as tf

    from gan_vae_tf import kinds

    kind = kinds.of(cfg)
    x = kind.pixels(cfg).scale(images).numpy()
    dataset = tf.data.Dataset.from_tensor_slices(x).shuffle(len(x)).batch(cfg.train.batch_size)
    bce = tf.keras.losses.BinaryCrossentropy(from_logits=True)
    nets = kind.build(cfg).networks()  # float32, as the tutorials train
    if "discriminator" in nets:  # the DCGAN tutorial's loop; else the CVAE tutorial's
        gen, disc = nets["generator"], nets["discriminator"]
        g_opt = tf.keras.optimizers.Adam(cfg.train.learning_rate, beta_1=cfg.train.beta_1)
        d_opt = tf.keras.optimizers.Adam(cfg.train.learning_rate, beta_1=cfg.train.beta_1)

        @tf.function
        def step(real):
            noise = tf.random.normal([tf.shape(real)[0], cfg.gan.noise_dim])
            with tf.GradientTape() as gt, tf.GradientTape() as dt:
                fake = gen(noise, training=True)
                r, f = disc(real, training=True), disc(fake, training=True)
                g_loss = bce(tf.ones_like(f), f)
                d_loss = bce(tf.ones_like(r), r) + bce(tf.zeros_like(f), f)
            g_opt.apply_gradients(
                zip(
                    gt.gradient(g_loss, gen.trainable_variables),
                    gen.trainable_variables,
                    strict=True,
                )
            )
            d_opt.apply_gradients(
                zip(
                    dt.gradient(d_loss, disc.trainable_variables),
                    disc.trainable_variables,
                    strict=True,
                )
            )
            return d_loss
    else:
        enc, dec = nets["encoder"], nets["decoder"]
        opt = tf.keras.optimizers.Adam(cfg.train.learning_rate, beta_1=cfg.train.beta_1)
        variables = enc.trainable_variables + dec.trainable_variables

        @tf.function
        def step(xb):
            with tf.GradientTape() as tape:
                mean, logvar = tf.split(enc(xb, training=True), 2, axis=1)
                z = mean + tf.exp(0.5 * logvar) * tf.random.normal(tf.shape(mean))
                logits = dec(z, training=True)
                if cfg.vae.likelihood == "bernoulli":
                    rec = tf.reduce_sum(
                        tf.nn.sigmoid_cross_entropy_with_logits(labels=xb, logits=logits), [1, 2, 3]
                    )
                else:
                    rec = tf.reduce_sum(tf.square(xb - tf.sigmoid(logits)), [1, 2, 3]) / (
                        2 * cfg.vae.obs_sigma**2
                    )
                kl = 0.5 * tf.reduce_sum(tf.exp(logvar) + tf.square(mean) - 1.0 - logvar, 1)
                loss = tf.reduce_mean(rec + kl)
            opt.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
            return loss

    def run(n_steps: int) -> float:
        done, start = 0, time.perf_counter()
        while done < n_steps:
            for batch in dataset:
                if batch.shape[0] != cfg.train.batch_size:
                    continue
                loss = step(batch)
                done += 1
                if done == n_steps:
                    float(loss)  # the last step has finished
                    end = time.perf_counter()
                    break
        return done * cfg.train.batch_size / (end - start)

    run(max(2, steps // 4))
    return run(steps)


def matmul_peak(dtype: str, n: int = 2048, reps: int = 10) -> float:
    import tensorflow as tf

    a = tf.cast(tf.random.normal((n, n)), dtype)
    b = tf.cast(tf.random.normal((n, n)), dtype)
    mm = tf.function(tf.linalg.matmul)
    mm(a, b).numpy()
    best = 0.0
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(reps):
            out = mm(a, b)
        out.numpy()
        best = max(best, 2 * n**3 * reps / (time.perf_counter() - start))
    return best


def child(args) -> None:
    """One measurement in this process; prints one JSON line."""
    if args.child == "peak":
        print(json.dumps({"float32": matmul_peak("float32"), "bfloat16": matmul_peak("bfloat16")}))
        return
    preset, method = args.child.split(":")
    cfg = preset_config(preset, args.data_dir)
    images, source = images_for(cfg, args.images)
    if method == "baseline":
        rate = run_baseline(cfg, images, args.steps)
    else:
        rate = run_project(cfg, images, args.steps, in_memory=method == "memory")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "images_per_s": rate,
                "peak_rss_mb": rss,
                "data": source,
                "batch_size": cfg.train.batch_size,
                "flops_per_image": train_flops_per_image(cfg),
            }
        )
    )


def measure(spec: str, args) -> dict:
    steps = args.steps or STEPS.get(spec.split(":")[0], 20)
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.bench",
        "--child",
        spec,
        "--steps",
        str(steps),
        "--images",
        str(args.images),
    ] + (["--data-dir", args.data_dir] if args.data_dir else [])
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if out.returncode:
        raise SystemExit(f"benchmark child {spec} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    console.setup()  # TensorFlow's start-up and grappler chatter stays off the output
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--presets", default=",".join(PRESETS))
    p.add_argument(
        "--steps", type=int, help=f"timed train steps per measurement (default per preset: {STEPS})"
    )
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--images", type=int, default=8192, help="training images held by each run")
    p.add_argument("--data-dir", default=os.environ.get("GAN_VAE_TF_DATA_DIR"))
    p.add_argument("--out", default=str(OUT))
    p.add_argument(
        "--render",
        metavar="RESULTS_JSON",
        help="only rewrite the Markdown table from an earlier results.json",
    )
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args)
        return 0
    if args.render:
        path = Path(args.render)
        result = json.loads(path.read_text())
        result["rows"] = [derive(r, result["peak_flops"]) for r in result["rows"]]
        path.write_text(json.dumps(result, indent=2) + "\n")
        path.with_suffix(".md").write_text(markdown(result))
        print(markdown(result))
        return 0

    from gan_vae_tf import config as config_lib
    from gan_vae_tf import precision

    presets = args.presets.split(",")
    for name in presets:
        config_lib.preset(name)  # an unknown name fails here, before minutes of measuring
    policy, why = precision.resolve("auto")
    machine = {
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "auto_precision": f"{policy} ({why})",
    }
    print(f"machine: {machine}")
    peak = measure("peak", args)
    print(
        f"matmul peak: float32 {peak['float32'] / 1e12:.3f} TFLOP/s, "
        f"bfloat16 {peak['bfloat16'] / 1e12:.3f} TFLOP/s"
    )
    rows = []
    for preset in presets:
        runs: dict[str, list[dict]] = {m: [] for m in METHODS}
        for _ in range(args.repeats):
            for method in METHODS:  # interleaved, so drift hits every method alike
                runs[method].append(measure(f"{preset}:{method}", args))
        med = {m: statistics.median(r["images_per_s"] for r in rs) for m, rs in runs.items()}
        spread = {
            m: (min(r["images_per_s"] for r in rs), max(r["images_per_s"] for r in rs))
            for m, rs in runs.items()
        }
        flops = runs["project"][0]["flops_per_image"]
        row = derive(
            {
                "preset": preset,
                "data": runs["project"][0]["data"],
                "steps": args.steps or STEPS.get(preset, 20),
                "repeats": args.repeats,
                "measured_at": time.strftime("%Y-%m-%d %H:%M"),
                "batch_size": runs["project"][0]["batch_size"],
                "project_images_per_s": med["project"],
                "baseline_images_per_s": med["baseline"],
                "memory_images_per_s": med["memory"],
                "spread": spread,
                "rates": {m: [r["images_per_s"] for r in rs] for m, rs in runs.items()},
                "train_gflop_per_image": flops / 1e9,
                "peak_rss_mb": {m: max(r["peak_rss_mb"] for r in rs) for m, rs in runs.items()},
            },
            peak,
        )
        rows.append(row)
        print(
            f"{preset}: "
            + ", ".join(
                f"{m} best {spread[m][1]:.0f} img/s (median {med[m]:.0f}, slowest {spread[m][0]:.0f})"
                for m in METHODS
            )
            + f"; ratio of best {row['best_ratio']:.2f}x",
            flush=True,
        )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result = {"machine": machine, "peak_flops": peak, "rows": rows}
    (out / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "results.md").write_text(markdown(result))
    print(markdown(result))
    return 0


def derive(row: dict, peak: dict) -> dict:
    """Ratios and peak fractions of one preset's measured rates, from the best runs."""
    flops = row["train_gflop_per_image"] * 1e9
    project, baseline = best(row, "project"), best(row, "baseline")
    return {
        **row,
        "ratio": row["project_images_per_s"] / row["baseline_images_per_s"],  # of medians
        "best_ratio": project / baseline,
        "pipeline_vs_memory": project / best(row, "memory"),
        "project_tflops": project * flops / 1e12,
        "fraction_of_fp32_peak": project * flops / peak["float32"],
        "fraction_of_bf16_peak": project * flops / peak["bfloat16"],
        "baseline_fraction_of_fp32_peak": baseline * flops / peak["float32"],
        # the best ratio any implementation of the same FLOPs could reach at the faster
        # measured matmul rate, bf16 or float32
        "ceiling_ratio": max(peak.values()) / (baseline * flops),
    }


def best(row: dict, method: str) -> float:
    """The fastest of the repeats. Interference on a shared machine (other processes, a
    throttled VM) only ever slows a run down, so the best rate is the least disturbed one."""
    return row["spread"][method][1]


def markdown(result: dict) -> str:
    m, peak = result["machine"], result["peak_flops"]
    lines = [
        f"Machine: {m['cpu']}, {m['cores']} cores; auto precision: {m['auto_precision']}; "
        f"matmul peak float32 {peak['float32'] / 1e12:.3f} TFLOP/s, bfloat16 "
        f"{peak['bfloat16'] / 1e12:.3f} TFLOP/s. Images/s: the best of the runs, then "
        "median and slowest; ratio and peak fractions use the best runs (median "
        'ratio in brackets). "In memory" is the project\'s model fed a resident batch; '
        '"ceiling" is the ratio the baseline\'s FLOPs would allow at the faster matmul peak.',
        "",
        "| preset | runs x steps x batch | project img/s | in memory img/s | baseline img/s | ratio "
        "| ceiling | GFLOP/img (train) | % fp32 peak (project / baseline) | % bf16 peak "
        "| peak RSS MB (project / baseline) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    median = {
        "project": "project_images_per_s",
        "memory": "memory_images_per_s",
        "baseline": "baseline_images_per_s",
    }

    def cell(r: dict, k: str) -> str:
        return f"{best(r, k):.0f} ({r[median[k]]:.0f}, {r['spread'][k][0]:.0f})"

    for r in result["rows"]:
        lines.append(
            f"| {r['preset']} | {r['repeats']} x {r['steps']} x "
            f"{r['batch_size']} | {cell(r, 'project')} "
            f"| {cell(r, 'memory')} | {cell(r, 'baseline')} "
            f"| {r['best_ratio']:.2f}x ({r['ratio']:.2f}x) | {r['ceiling_ratio']:.2f}x "
            f"| {r['train_gflop_per_image']:.3f} "
            f"| {100 * r['fraction_of_fp32_peak']:.0f}% / {100 * r['baseline_fraction_of_fp32_peak']:.0f}% "
            f"| {100 * r['fraction_of_bf16_peak']:.0f}% "
            f"| {r['peak_rss_mb']['project']:.0f} / {r['peak_rss_mb']['baseline']:.0f} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    errors.exit_with(main)
