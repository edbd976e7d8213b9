"""Evaluate a run directory: `python -m gan_vae_tf.evaluate RUN_DIR`.

GAN runs: the mean discriminator probability sigmoid(D) on generated and on real test images.
VAE runs: the test-set ELBO (nats per image, bits per dimension) and reconstruction error.
Prints a summary and writes the metrics into the run directory (`rundir.METRICS`).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from gan_vae_tf import console, rundir
from gan_vae_tf.config import Config
from gan_vae_tf.errors import UserError

log = logging.getLogger("gan_vae_tf")


def load_run(run_dir: str | os.PathLike, raw_generator: bool = False):
    """The config and trained model of a run directory, or a UserError saying what is missing.

    A DCGAN samples from its EMA generator when it kept one, unless the run's config or
    `raw_generator` says to use the raw generator."""
    import keras

    from gan_vae_tf import layers, models  # noqa: F401  (registers the serializable classes)

    run = rundir.RunDir(run_dir)
    if not run.path.is_dir():
        raise UserError(f"{run.path} is not a directory")
    if not run.config.is_file():
        raise UserError(f"{run.path} is not a run directory: it has no {run.config.name}")
    try:
        cfg = Config.from_json(run.config)
    except (ValueError, TypeError, KeyError) as e:
        raise UserError(f"{run.config} is not a valid run config: {e}") from None
    model_path = run.model
    if not model_path.is_file():
        raise UserError(
            f"{run.path} has no trained model ({model_path.name}): did training finish?"
        )
    try:
        model = keras.saving.load_model(model_path)
    except Exception as e:
        raise UserError(f"cannot load {model_path}: {e}") from None
    if getattr(model, "generator_ema", None) is not None:
        model.sample_with_ema = cfg.gan.sample_with_ema and not raw_generator
    return cfg, model


def _batches(array, size: int):
    for i in range(0, len(array), size):
        yield array[i : i + size]


def evaluate_gan(model, real, batch: int = 500) -> dict:
    import numpy as np
    import tensorflow as tf

    from gan_vae_tf import data, metrics

    discriminate = tf.function(lambda x: model.discriminator(x, training=False))
    judge_fakes = tf.function(
        lambda n: model.discriminator(model(model.sample_noise(n)), training=False)
    )
    real_logits = np.concatenate(
        [discriminate(data.scale(b, "gan")).numpy() for b in _batches(real, batch)]
    )
    fake_logits = np.concatenate([judge_fakes(len(b)).numpy() for b in _batches(real, batch)])
    return {
        "images": int(len(real)),
        "d_fake": metrics.mean_probability(fake_logits),
        "d_real": metrics.mean_probability(real_logits),
    }


def evaluate_vae(model, cfg: Config, test_images, batch: int = 500) -> dict:
    import numpy as np
    import tensorflow as tf

    from gan_vae_tf import data, metrics

    @tf.function
    def step(x):
        elbo, log_px_z, kl = model.elbo_terms(x)
        sq_err = tf.reduce_mean(tf.square(model.reconstruct(x) - x), axis=[1, 2, 3])
        return elbo, log_px_z, kl, sq_err

    parts = [step(data.scale(b, "vae", cfg.data.binarize)) for b in _batches(test_images, batch)]
    elbo, log_px_z, kl, sq_err = (np.concatenate([p[i].numpy() for p in parts]) for i in range(4))
    elbo_mean, elbo_se = metrics.mean_and_stderr(elbo)
    dims = int(np.prod(test_images.shape[1:]))
    return {
        "images": int(len(test_images)),
        "likelihood": cfg.vae.likelihood,
        "elbo_nats": elbo_mean,
        "elbo_stderr": elbo_se,
        # A density on [0, 1] pixels is read on the 8-bit scale [0, 256): + log2(256) per dim.
        "elbo_bits_per_dim": metrics.bits_per_dim(elbo_mean, dims)
        + (8.0 if cfg.vae.likelihood == "gaussian" else 0.0),
        "reconstruction_nll_nats": float(-log_px_z.mean()),
        "kl_nats": float(kl.mean()),
        "reconstruction_mse": float(sq_err.mean()),
    }


def generate(model, n: int, batch: int = 500):
    """n uint8 samples: generator outputs for a GAN, decoded prior means for a VAE."""
    import keras
    import numpy as np

    from gan_vae_tf import plots

    # Eager: batches of hundreds of images are all convolution, and a tf.function made here
    # would be traced anew on every call.
    chunks = [
        keras.ops.convert_to_numpy(model.sample(min(batch, n - i))) for i in range(0, n, batch)
    ]
    return plots.to_uint8(np.concatenate(chunks))


def iwae(model, cfg: Config, images, k: int, batch_images: int = 8) -> dict:
    """The importance-weighted bound (k samples) beside the single-sample ELBO, same images."""
    import numpy as np
    import tensorflow as tf

    from gan_vae_tf import data, metrics

    weights = tf.function(lambda x: model.log_importance_weights(x, k))
    bounds, elbos = [], []
    for chunk in _batches(images, batch_images):
        log_w = weights(data.scale(chunk, "vae", cfg.data.binarize)).numpy()
        bounds.append(metrics.iwae_bound(log_w))
        elbos.append(log_w.mean(axis=1))
    bound, bound_se = metrics.mean_and_stderr(np.concatenate(bounds))
    elbo, _ = metrics.mean_and_stderr(np.concatenate(elbos))
    return {
        "k": k,
        "images": int(len(images)),
        "iwae_nats": bound,
        "iwae_stderr": bound_se,
        "elbo_same_images_nats": elbo,
    }


def sample_quality(cfg: Config, dataset, fake, inception_weights: str | None = None) -> dict:
    from gan_vae_tf import classifier, quality

    real, reference = quality.real_sets(dataset.test, len(fake))
    if cfg.data.dataset in quality.CLASSIFIER_DATASETS and dataset.train_labels is not None:
        clf, accuracy = classifier.train_or_load(
            cfg.data.dataset, dataset.train, dataset.train_labels, dataset.test, dataset.test_labels
        )
        result = quality.classifier_quality(clf, real, reference, fake)
        result["classifier_test_accuracy"] = accuracy
    else:
        result = quality.patch_quality(real, reference, fake)
    if inception_weights:
        result["inception"] = quality.inception_quality(inception_weights, real, reference, fake)
    else:
        result["inception"] = (
            "skipped: pass --inception-weights PATH (ImageNet InceptionV3, no top)"
        )
    return result


def evaluate(
    run_dir: str | os.PathLike,
    num: int = 10000,
    data_dir: str | None = None,
    quality_num: int = 5000,
    iwae_k: int = 1000,
    iwae_images: int = 500,
    inception_weights: str | None = None,
    raw_generator: bool = False,
) -> dict:
    import keras

    from gan_vae_tf import data, quality

    cfg, model = load_run(run_dir, raw_generator)
    if data_dir:
        cfg = replace(cfg, data=replace(cfg.data, data_dir=data_dir))
    keras.utils.set_random_seed(cfg.train.seed)
    dataset = data.load(cfg.data)
    result = model.test_metrics(cfg, dataset, num, iwae_k, iwae_images)
    n = quality.reference_size(quality_num, len(dataset.test))
    if n >= 2:
        result["quality"] = sample_quality(cfg, dataset, generate(model, n), inception_weights)
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
        from gan_vae_tf.quality import kid_text

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
        print(
            "error: no run directory given and no finished run in experiments/runs "
            "(train one first, e.g. make train-gan-mnist)",
            file=sys.stderr,
        )
        return 2
    status = 0
    for run_dir in run_dirs:
        try:
            if args.num <= 0 or args.quality_num < 0 or args.iwae_k < 0 or args.iwae_images <= 0:
                raise UserError(
                    "--num and --iwae-images must be positive, --quality-num and --iwae-k not negative"
                )
            if args.inception_weights and not Path(args.inception_weights).is_file():
                raise UserError(f"--inception-weights {args.inception_weights}: no such file")
            print(
                format_summary(
                    evaluate(
                        run_dir,
                        args.num,
                        args.data_dir,
                        args.quality_num,
                        args.iwae_k,
                        args.iwae_images,
                        args.inception_weights,
                        args.raw_generator,
                    )
                )
            )
            print(f"  wrote {rundir.RunDir(run_dir).metrics}")
        except UserError as e:
            print(f"error: {e}", file=sys.stderr)
            status = 2
    return status


if __name__ == "__main__":
    sys.exit(main())
