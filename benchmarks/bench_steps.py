"""Quality per training step: the recipe search's tool, where bench_quality measures per minute.

`python -m benchmarks.bench_steps ARM --steps N --every K --out FILE.json` trains one arm
(`preset` or `preset:section.key=value,...`, as in bench_quality) for N steps and scores its
samples every K steps with the mnist suite's metrics (classifier score, FID, precision/recall on
2,000 samples): the raw generator, the model's EMA generator and, with `--decays`, extra EMA
copies at other decays kept outside the compiled step (so their cost is not the model's).
Steps, not minutes, so two arms can run at once, each pinned to one core (`taskset -c 0` /
`taskset -c 1`), and still be compared fairly; their cost per step on both cores is measured
apart (`make bench` style, one job at a time). `--plot OUT.png FILE.json ...` draws the curves
of finished arms side by side.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

from gan_vae_tf import console, errors


def extra_averages(model, decays: list[float]):
    """Copies of the generator averaged at each decay (the model's ramp-up included), and a
    Keras callback that updates them after every step; neither without decays, whatever the
    steps per execution."""
    import keras
    import tensorflow as tf

    from gan_vae_tf import models

    if not decays:
        return [], None
    if model.steps_per_execution != 1:
        raise ValueError("extra averages update after every step: train with steps_per_execution 1")
    copies = []
    for d in decays:
        net = models.copy_network(model.generator, f"generator_ema_{d}")
        net.trainable = False
        copies.append((d, net))

    @tf.function
    def update():
        for d, net in copies:
            models.update_average(net, model.generator, d, model.g_optimizer.iterations)

    class Update(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            update()

    return copies, Update()


def train(args) -> dict:
    import keras

    from benchmarks.bench_quality import make_scorer
    from benchmarks.common import arm_config, build_arm, cpu_name
    from gan_vae_tf import data, kinds, plots

    cfg = arm_config(args.arm, args.seed)
    if args.data_dir:
        cfg = replace(cfg, data=replace(cfg.data, data_dir=args.data_dir))
    if args.decays:  # their callback runs once per compiled call; the steps are the same
        cfg = replace(cfg, train=replace(cfg.train, steps_per_execution=1))
    if args.every % cfg.train.steps_per_execution:
        raise errors.UserError(
            f"--every {args.every} must be a multiple of the arm's steps per execution "
            f"({cfg.train.steps_per_execution}), or the repeated data would run past it"
        )
    dataset = data.load(cfg.data)
    scorer, floor, extra = make_scorer("digits", dataset, args.num)
    model, policy, why = build_arm(cfg, args.precision)
    print(f"{args.arm}: precision {policy} ({why})", flush=True)
    copies, callback = extra_averages(model, args.decays)
    noise = keras.random.normal((args.num, cfg.gan.noise_dim), seed=7)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)

    def score(net, name: str) -> dict:
        images = plots.to_uint8(keras.ops.convert_to_numpy(net(noise, training=False)), (-1, 1))
        if name == "ema":
            png = out.with_name(f"{out.stem}-{done:06d}.png")
            plots.save_png(plots.grid(images[:64], 8), png, 2)
        return scorer(images)

    nets = {"raw": model.generator, "ema": model.generator_ema}
    nets.update({f"ema_{d}": net for d, net in copies})
    nets = {k: v for k, v in nets.items() if v is not None}
    ds = data.pipeline(dataset.train, cfg, kinds.of(cfg).pixels(cfg), training=True).repeat()
    rows, done, seconds = [], 0, 0.0
    result = {
        "arm": args.arm,
        "precision": policy,
        "cpu": cpu_name(),
        "floor": floor,
        **extra,
        "rows": rows,
    }
    while done < args.steps:
        start = time.perf_counter()
        model.fit(
            ds,
            epochs=1,
            steps_per_epoch=args.every,
            verbose=0,
            shuffle=False,
            callbacks=[callback] if copies else [],
        )
        seconds += time.perf_counter() - start
        done += args.every
        row = {"steps": done, "seconds": round(seconds, 1)}
        row.update({name: score(net, name) for name, net in nets.items()})
        rows.append(row)
        summary = {
            k: round(v["classifier_score"], 3) for k, v in row.items() if isinstance(v, dict)
        }
        print(f"{args.arm} {done} steps: classifier score {summary}", flush=True)
        out.write_text(json.dumps(result, indent=1) + "\n")
    return result


def plot(path: str, files: list[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(13, 5.6))
    colors = plt.get_cmap("tab20").colors
    for i, f in enumerate(files):
        r = json.loads(Path(f).read_text())
        key = "ema" if "ema" in r["rows"][0] else "raw"
        steps = [row["steps"] for row in r["rows"]]
        label = f"{Path(f).stem}: {r.get('label', r['arm'])}"
        for ax, metric in zip(axes, ("classifier_score", "fid"), strict=True):
            values = [row[key][metric] for row in r["rows"]]
            ax.plot(steps, values, marker="o", ms=3, color=colors[i % 20], label=label)
    floor = r["floor"]
    for ax, metric, target, name in (
        (axes[0], "classifier_score", 8.0, "classifier score"),
        (axes[1], "fid", 5 * floor["fid"], "FID, classifier features"),
    ):
        ax.axhline(floor[metric], color="gray", ls="--", label="real data (floor)")
        ax.axhline(target, color="tab:red", ls=":", lw=0.8)
        ax.set_xlabel("training steps")
        ax.set_ylabel(f"{name} (EMA generator)")
        ax.grid(alpha=0.3)
    axes[1].set_yscale("log")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="lower center", ncol=3, fontsize=7)
    fig.suptitle(f"{r['cpu']}: quality per step, 2,000 samples per point", fontsize=9)
    fig.tight_layout(rect=(0, 0.06 + 0.025 * ((len(files) + 3) // 3), 1, 1))
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None) -> int:
    console.setup()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("arm", nargs="?", help="preset or preset:section.key=value,...")
    p.add_argument("--steps", type=int, default=12500)
    p.add_argument("--every", type=int, default=2500, help="steps between scores")
    p.add_argument("--num", type=int, default=2000, help="generated images per score")
    p.add_argument("--decays", type=lambda s: [float(x) for x in s.split(",") if x], default=[])
    p.add_argument("--data-dir", help="default: $GAN_VAE_TF_DATA_DIR, then the caches")
    p.add_argument("--precision", help="override the arm's train.precision (rounds 10-19: float32)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="the arm's JSON file (its sample grids go beside it)")
    p.add_argument("--plot", nargs="+", metavar=("PNG", "JSON"), help="draw finished arms")
    args = p.parse_args(argv)
    if args.plot:
        plot(args.plot[0], args.plot[1:])
        return 0
    if not (args.arm and args.out):
        p.error("give an ARM and --out (or --plot PNG JSON...)")
    train(args)
    return 0


if __name__ == "__main__":
    errors.exit_with(main)
