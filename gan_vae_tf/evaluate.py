"""Evaluate a run directory: `python -m gan_vae_tf.evaluate RUN_DIR`.

GAN runs: the mean discriminator probability sigmoid(D) on generated and on real test images.
VAE runs: the test-set ELBO (nats per image, bits per dimension) and reconstruction error.
Prints a summary and writes RUN_DIR/metrics.json.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Sequence

from gan_vae_tf.config import Config
from gan_vae_tf.errors import UserError

log = logging.getLogger("gan_vae_tf")


def load_run(run_dir: str | os.PathLike):
    """The config and trained model of a run directory, or a UserError saying what is missing."""
    import keras

    from gan_vae_tf import layers, models  # noqa: F401  (registers the serializable classes)

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"{run_dir} is not a directory")
    if not (run_dir / "config.json").is_file():
        raise UserError(f"{run_dir} is not a run directory: it has no config.json")
    try:
        cfg = Config.from_json(run_dir / "config.json")
    except (ValueError, TypeError, KeyError) as e:
        raise UserError(f"{run_dir / 'config.json'} is not a valid run config: {e}") from None
    model_path = run_dir / "model.keras"
    if not model_path.is_file():
        raise UserError(f"{run_dir} has no trained model (model.keras): did training finish?")
    try:
        model = keras.saving.load_model(model_path)
    except Exception as e:
        raise UserError(f"cannot load {model_path}: {e}") from None
    return cfg, model


def _batches(array, size: int):
    for i in range(0, len(array), size):
        yield array[i:i + size]


def evaluate_gan(model, test_images, num: int, batch: int = 500) -> dict:
    import numpy as np
    import tensorflow as tf

    from gan_vae_tf import data, metrics

    discriminate = tf.function(lambda x: model.discriminator(x, training=False))
    generate = tf.function(lambda n: model.discriminator(model.generator(
        model.sample_noise(n), training=False), training=False))
    real = test_images[:num]
    real_logits = np.concatenate([discriminate(data.scale(b, "gan")).numpy() for b in _batches(real, batch)])
    fake_logits = np.concatenate([generate(len(b)).numpy() for b in _batches(real, batch)])
    return {"images": int(len(real)),
            "d_fake": metrics.mean_probability(fake_logits),
            "d_real": metrics.mean_probability(real_logits)}


def evaluate_vae(model, cfg: Config, test_images, batch: int = 500) -> dict:
    import numpy as np
    import tensorflow as tf

    from gan_vae_tf import data, metrics

    @tf.function
    def step(x):
        elbo, log_px_z, kl = model.elbo_terms(x)
        mean, _ = model.encode(x)
        recon = tf.sigmoid(model.decode(mean))
        sq_err = tf.reduce_mean(tf.square(recon - x), axis=[1, 2, 3])
        return elbo, log_px_z, kl, sq_err

    parts = [step(data.scale(b, "vae", cfg.data.binarize)) for b in _batches(test_images, batch)]
    elbo, log_px_z, kl, sq_err = (np.concatenate([p[i].numpy() for p in parts]) for i in range(4))
    elbo_mean, elbo_se = metrics.mean_and_stderr(elbo)
    dims = int(np.prod(test_images.shape[1:]))
    return {"images": int(len(test_images)), "likelihood": cfg.vae.likelihood,
            "elbo_nats": elbo_mean, "elbo_stderr": elbo_se,
            "elbo_bits_per_dim": metrics.bits_per_dim(elbo_mean, dims),
            "reconstruction_nll_nats": float(-log_px_z.mean()), "kl_nats": float(kl.mean()),
            "reconstruction_mse": float(sq_err.mean())}


def evaluate(run_dir: str | os.PathLike, num: int = 10000, data_dir: str | None = None) -> dict:
    import keras

    from gan_vae_tf import data

    cfg, model = load_run(run_dir)
    if data_dir:
        cfg = replace(cfg, data=replace(cfg.data, data_dir=data_dir))
    keras.utils.set_random_seed(cfg.train.seed)
    dataset = data.load(cfg.data)
    if cfg.model == "gan":
        result = evaluate_gan(model, dataset.test, num)
    else:
        result = evaluate_vae(model, cfg, dataset.test[:num])
    result = {"preset": cfg.preset, "model": cfg.model, "data_source": dataset.source, **result}
    path = Path(run_dir) / "metrics.json"
    tmp = path.with_name("metrics.json.tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    os.replace(tmp, path)
    return result


def format_summary(m: dict) -> str:
    lines = [f"{m['preset']} on {m['data_source']} ({m['images']} test images)"]
    if m["model"] == "gan":
        lines += [f"  D(G(z)) mean discriminator probability on generated images: {m['d_fake']:.4f}",
                  f"  D(x)    mean discriminator probability on real test images:  {m['d_real']:.4f}"]
    else:
        lines += [f"  test ELBO: {m['elbo_nats']:.2f} +/- {m['elbo_stderr']:.2f} nats per image "
                  f"({m['elbo_bits_per_dim']:.4f} bits/dim, {m['likelihood']} likelihood)",
                  f"  reconstruction: {m['reconstruction_nll_nats']:.2f} nats NLL, "
                  f"MSE {m['reconstruction_mse']:.5f} per pixel; KL {m['kl_nats']:.2f} nats"]
    return "\n".join(lines)


def latest_runs(root: Path) -> list[Path]:
    """The newest finished run (one with model.keras) of each preset under root."""
    newest: dict[str, Path] = {}
    for model_file in sorted(root.glob("*/model.keras"), key=lambda p: p.stat().st_mtime):
        try:
            preset = json.loads((model_file.parent / "config.json").read_text())["preset"]
        except (OSError, ValueError, KeyError):
            continue
        newest[preset] = model_file.parent
    return sorted(newest.values())


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    p = argparse.ArgumentParser(prog="python -m gan_vae_tf.evaluate", description=__doc__.splitlines()[0])
    p.add_argument("run_dirs", nargs="*", metavar="RUN_DIR")
    p.add_argument("--latest", action="store_true",
                   help="evaluate the newest finished run of each preset in experiments/runs")
    p.add_argument("--num", type=int, default=10000, help="images to evaluate (default 10000)")
    p.add_argument("--data-dir", help="override the run's data directory")
    args = p.parse_args(argv)
    run_dirs = list(args.run_dirs)
    if args.latest:
        run_dirs += [str(d) for d in latest_runs(Path("experiments") / "runs")]
    if not run_dirs:
        print("error: no run directory given and no finished run in experiments/runs "
              "(train one first, e.g. make train-gan-mnist)", file=sys.stderr)
        return 2
    status = 0
    for run_dir in run_dirs:
        try:
            if args.num <= 0:
                raise UserError(f"--num must be positive, got {args.num}")
            print(format_summary(evaluate(run_dir, args.num, args.data_dir)))
            print(f"  wrote {Path(run_dir) / 'metrics.json'}")
        except UserError as e:
            print(f"error: {e}", file=sys.stderr)
            status = 2
    return status


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.exit(main())
