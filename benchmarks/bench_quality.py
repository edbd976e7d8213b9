"""Time to quality: the default DCGAN-MNIST trained for a fixed wall-clock budget.

`make bench-quality` trains the `gan-mnist` preset exactly as `train.py` would (same model,
pipeline and precision) for `--minutes` of training time, and every `--every` seconds scores
`--num` generated images with the project's evaluation metrics (classifier score and FID in the
digit classifier's features, against held-out test digits). Scoring time is not charged to the
budget. Writes experiments/bench/quality.{json,md,png} and the last sample grid.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
if not __package__:  # run as a file (python benchmarks/x.py): find the `benchmarks` package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import OUT, TimeBudget, cpu_name, preset_config  # noqa: E402

TARGET_CLASSIFIER_SCORE = 9.0


def quality_curve(points: list[dict], floor: dict, path: Path, title: str) -> None:
    """Classifier score and FID against minutes of training, with the real-data floor."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    minutes = [p["train_seconds"] / 60 for p in points]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, key, label in ((axes[0], "classifier_score", "classifier score (higher is better)"),
                           (axes[1], "fid", "FID, classifier features (lower is better)")):
        ax.plot(minutes, [p[key] for p in points], marker="o", ms=4, label="DCGAN samples")
        ax.axhline(floor[key], color="gray", ls="--", label="real test digits")
        if key == "classifier_score":
            ax.axhline(TARGET_CLASSIFIER_SCORE, color="tab:red", ls=":", label="target 9.0")
        ax.set_xlabel("minutes of training")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[1].set_yscale("log")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="gan-mnist")
    p.add_argument("--minutes", type=float, default=10.0, help="training wall-clock budget")
    p.add_argument("--every", type=float, default=60.0, help="seconds of training between scores")
    p.add_argument("--num", type=int, default=2000, help="generated images per score")
    p.add_argument("--data-dir", default=os.environ.get("GAN_VAE_TF_DATA_DIR"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(OUT))
    args = p.parse_args()

    from dataclasses import replace

    import keras

    from gan_vae_tf import classifier, data, evaluate, models, plots, precision, quality
    from gan_vae_tf.errors import UserError

    cfg = preset_config(args.preset, args.data_dir)
    cfg = replace(cfg, train=replace(cfg.train, seed=args.seed))
    try:
        dataset = data.load(cfg.data)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if cfg.data.dataset not in quality.CLASSIFIER_DATASETS or dataset.train_labels is None:
        print(f"error: {args.preset} has no labelled digit data to score with", file=sys.stderr)
        return 2
    clf, accuracy = classifier.train_or_load(cfg.data.dataset, dataset.train, dataset.train_labels,
                                             dataset.test, dataset.test_labels)
    n = quality.reference_size(args.num, len(dataset.test))
    real, reference = quality.real_sets(dataset.test, n)

    floor = {}

    def score(model) -> dict:
        q = quality.classifier_quality(clf, real, reference, evaluate.generate(model, n))
        floor.update(q["real_floor"])
        point = {k: q["model"][k] for k in ("classifier_score", "fid", "precision", "recall")}
        print(f"  {point}", flush=True)
        return point

    keras.utils.set_random_seed(cfg.train.seed)
    policy, why = precision.resolve(cfg.train.precision)
    model = models.build(cfg, policy)
    clock = TimeBudget(args.minutes * 60, args.every, score, cfg.train.batch_size)
    ds = data.pipeline(dataset.train, cfg, training=True)
    print(f"{args.preset}: {len(dataset.train)} images from {dataset.source}, precision {policy} "
          f"({why}), batch {cfg.train.batch_size}; budget {args.minutes:g} min", flush=True)
    wall = time.perf_counter()
    model.fit(ds, epochs=10_000, callbacks=[clock], verbose=0)
    wall = time.perf_counter() - wall

    points = clock.points
    best = max(p["classifier_score"] for p in points)
    reached = next((p["train_seconds"] for p in points
                    if p["classifier_score"] >= TARGET_CLASSIFIER_SCORE), None)
    result = {"preset": args.preset, "machine": {"cpu": cpu_name(), "cores": os.cpu_count(),
                                                 "python": platform.python_version()},
              "precision": policy, "batch_size": cfg.train.batch_size,
              "train_images": len(dataset.train), "budget_minutes": args.minutes,
              "images_per_score": n, "classifier_test_accuracy": accuracy,
              "real_floor": {k: floor[k] for k in ("classifier_score", "fid", "precision", "recall")},
              "points": points, "best_classifier_score": best,
              "target_classifier_score": TARGET_CLASSIFIER_SCORE,
              "target_reached_after_seconds": reached, "wall_seconds_including_scoring": wall,
              "data": dataset.source}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "quality.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "quality.md").write_text(markdown(result))
    title = (f"{args.preset}, {result['machine']['cpu']} ({result['machine']['cores']} cores), "
             f"{policy}, batch {cfg.train.batch_size}, {n} samples per point")
    quality_curve(points, result["real_floor"], out / "quality.png", title)
    plots.save_png(plots.grid(evaluate.generate(model, 16), 4), out / "quality_samples.png", 2)
    print(markdown(result))
    return 0


def markdown(r: dict) -> str:
    m = r["machine"]
    lines = [f"{r['preset']} for {r['budget_minutes']:g} minutes of training on {m['cpu']} "
             f"({m['cores']} cores), {r['precision']}, batch {r['batch_size']}; "
             f"{r['images_per_score']} generated vs {r['images_per_score']} test digits per point "
             f"(classifier test accuracy {r['classifier_test_accuracy']:.4f}).", "",
             "| minutes | steps | images seen | epochs | classifier score | FID | precision | recall |",
             "|---|---|---|---|---|---|---|---|"]
    for p in r["points"]:
        lines.append(f"| {p['train_seconds'] / 60:.1f} | {p['steps']} | {p['images_seen']} "
                     f"| {p['images_seen'] / r['train_images']:.2f} | {p['classifier_score']:.2f} | {p['fid']:.1f} "
                     f"| {p['precision']:.2f} | {p['recall']:.2f} |")
    f = r["real_floor"]
    lines.append(f"| real test digits | | | | {f['classifier_score']:.2f} | {f['fid']:.1f} "
                 f"| {f['precision']:.2f} | {f['recall']:.2f} |")
    reached = r["target_reached_after_seconds"]
    lines += ["", f"Target classifier score {r['target_classifier_score']}: "
              + (f"reached after {reached / 60:.1f} min." if reached is not None else
                 f"not reached (best {r['best_classifier_score']:.2f}).")]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
