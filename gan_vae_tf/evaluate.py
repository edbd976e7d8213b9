"""Evaluate a run directory: `python -m gan_vae_tf.evaluate RUN_DIR`.

GAN runs: the mean discriminator probability sigmoid(D) on generated and on real test images.
VAE runs: the test-set ELBO (nats per image, bits per dimension) and reconstruction error.
Prints a summary and writes the metrics into the run directory (`rundir.METRICS`). The
measurements are `evaluation`'s and `kinds`'; they import TensorFlow, so they are imported after
`console.setup()`, inside the functions.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from gan_vae_tf import console, errors, rundir
from gan_vae_tf.errors import UserError
from gan_vae_tf.quality import fidelity_text, kid_text

if TYPE_CHECKING:
    from gan_vae_tf.evaluation import Request


def evaluate(
    run_dir: str | os.PathLike, request: Request | None = None, data_dir: str | None = None
) -> dict:
    """Measure a run on held-out data (`data_dir` overrides the run's) and write the result
    into the run directory; returns it."""
    import keras

    from gan_vae_tf import data, evaluation, kinds, quality

    request = request or evaluation.Request()
    cfg, model = kinds.load_run(run_dir)
    kind = kinds.of(cfg)
    if data_dir:
        cfg = replace(cfg, data=replace(cfg.data, data_dir=data_dir))
    keras.utils.set_random_seed(cfg.train.seed)
    dataset = data.load(cfg.data)
    result = kind.test_metrics(model, cfg, dataset, request)
    n = quality.reference_size(request.quality_num, len(dataset.test))
    if n >= 2:
        classes = kind.classes(cfg)
        requested = evaluation.balanced_labels(n, classes) if classes else None
        fake = kind.samples(model, n, request, requested)
        result["quality"] = evaluation.sample_quality(
            cfg, dataset, fake, request.inception_weights, requested
        )
    result = {"preset": cfg.preset, "model": cfg.model, "data_source": dataset.source, **result}
    rundir.write_json(rundir.RunDir(run_dir).metrics, result)
    return result


def format_summary(m: dict) -> str:
    lines = [f"{m['preset']} on {m['data_source']} ({m['images']} test images)"]
    if "d_fake" in m:
        lines += [
            f"  D(G(z)) mean discriminator probability on generated images: {m['d_fake']:.4f}",
            f"  D(x)    mean discriminator probability on real test images:  {m['d_real']:.4f}",
        ]
    if "elbo_nats" in m:
        lines += [
            f"  test ELBO: {m['elbo_nats']:.2f} ± {m['elbo_stderr']:.2f} (standard error over "
            f"{m['images']} images) nats per image "
            f"({m['elbo_bits_per_dim']:.4f} bits/dim, {m['likelihood']} likelihood)",
            f"  reconstruction: {m['reconstruction_nll_nats']:.2f} nats NLL, "
            f"MSE {m['reconstruction_mse']:.5f} per pixel; KL {m['kl_nats']:.2f} nats",
        ]
        if "iwae" in m:
            w = m["iwae"]
            lines.append(
                f"  IWAE (k={w['k']}): {w['iwae_nats']:.2f} ± {w['iwae_stderr']:.2f} (standard "
                f"error over {w['images']} images) nats; ELBO on the same images "
                f"{w['elbo_same_images_nats']:.2f}"
            )
    q = m.get("quality")
    if q:
        lines.append(
            f"  sample quality of {q['n']} samples against {q['n']} held-out images, "
            f"{q['feature_space']}"
        )
        lines.append(
            f"    {'':18s} {'model':>10s} | real-data floor ({q['n']} other held-out images)"
        )
        for key, value in q["model"].items():
            if key in ("kid_std", "kid_subsets", "kid_subset_size"):
                continue
            if key == "class_histogram":
                lines.append(f"    {'class histogram':18s} {value} | {q['real_floor'][key]}")
            elif key == "kid":
                lines.append(
                    f"    {key:18s} {kid_text(q['model']):>10s} | {kid_text(q['real_floor'])}"
                )
            else:
                lines.append(f"    {key:18s} {value:10.4f} | {q['real_floor'][key]:.4f}")
        fidelity = q.get("class_fidelity")
        if fidelity:
            lines.append(f"    class asked for   {fidelity_text(fidelity['model'])}")
            lines.append(
                f"    real-data floor   {fidelity_text(fidelity['real_floor'])} (true labels)"
            )
        if "classifier_test_accuracy" in q:
            lines.append(f"    classifier test accuracy {q['classifier_test_accuracy']:.4f}")
        if isinstance(q.get("inception"), str):
            lines.append(f"    inception: {q['inception']}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    console.setup()
    p = argparse.ArgumentParser(
        prog="python -m gan_vae_tf.evaluate", description=__doc__.splitlines()[0]
    )
    p.add_argument("run_dirs", nargs="*", metavar="RUN_DIR")
    p.add_argument(
        "--latest",
        action="store_true",
        help="evaluate the newest finished run of each preset in experiments/runs",
    )
    p.add_argument("--num", type=int, default=10000, help="images to evaluate (default 10000)")
    p.add_argument("--data-dir", help="override the run's data directory")
    p.add_argument(
        "--quality-num",
        type=int,
        default=5000,
        help="samples for FID/KID/precision-recall/SWD (0 to skip; default 5000)",
    )
    p.add_argument(
        "--iwae-k",
        type=int,
        default=1000,
        help="importance samples for the VAE's IWAE bound (0 to skip)",
    )
    p.add_argument("--iwae-images", type=int, default=500, help="test images for the IWAE bound")
    p.add_argument(
        "--inception-weights", help="ImageNet InceptionV3 (no top) weights file for Inception FID"
    )
    p.add_argument(
        "--raw-generator",
        action="store_true",
        help="GAN runs: sample the raw generator, not its moving average (EMA)",
    )
    args = p.parse_args(argv)
    run_dirs = list(args.run_dirs)
    if args.latest:
        run_dirs += [str(d) for d in rundir.latest()]
    if not run_dirs:
        return errors.report(
            UserError(
                "no run directory given and no finished run in experiments/runs "
                "(train one first, e.g. make train-gan-mnist)"
            )
        )
    from gan_vae_tf import evaluation  # after console.setup(): it imports TensorFlow

    try:
        if args.inception_weights and not Path(args.inception_weights).is_file():
            raise UserError(f"--inception-weights {args.inception_weights}: no such file")
        request = evaluation.Request(
            num=args.num,
            quality_num=args.quality_num,
            iwae_k=args.iwae_k,
            iwae_images=args.iwae_images,
            inception_weights=args.inception_weights,
            raw_generator=args.raw_generator,
        )
    except errors.REPORTED as e:
        return errors.report(e)
    status = 0
    for run_dir in run_dirs:
        try:
            print(format_summary(evaluate(run_dir, request, args.data_dir)))
            print(f"  wrote {rundir.RunDir(run_dir).metrics}")
        except errors.REPORTED as e:
            status = errors.report(e)
    return status


if __name__ == "__main__":
    sys.exit(main())
