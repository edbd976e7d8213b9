"""Train a preset: `python -m gan_vae_tf.train --preset gan-mnist [--epochs N] ...`.

The command line around `training.train`: it builds the config from a preset and flags (or
reads a stopped run's), prepares and locks the run directory, and turns every way a run can
end into one line and an exit code.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from gan_vae_tf import config as config_lib
from gan_vae_tf import console, distribute, errors, rundir
from gan_vae_tf.errors import ClusterError, Interrupted, StorageError, UserError

log = logging.getLogger("gan_vae_tf")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m gan_vae_tf.train", description=__doc__.splitlines()[0]
    )
    p.add_argument("--preset", help=f"one of: {', '.join(config_lib.PRESETS)}")
    p.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue a stopped run from its last checkpoint (with --epochs: up to N)",
    )
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--latent-dim", type=int, help="VAE latent size")
    p.add_argument(
        "--data-dir",
        help="folder with the dataset (default: $GAN_VAE_TF_DATA_DIR, then the Keras/TFDS caches)",
    )
    p.add_argument(
        "--dataset", choices=config_lib.DATASETS, help="e.g. fashion_mnist with an MNIST preset"
    )
    p.add_argument("--limit", type=int, help="use only the first N training images")
    p.add_argument("--seed", type=int)
    p.add_argument("--precision", choices=config_lib.PRECISIONS)
    p.add_argument("--steps-per-execution", type=int)
    p.add_argument(
        "--strategy",
        choices=("default", "mirrored", "multiworker"),
        help="tf.distribute: mirrored = all GPUs of this host, multiworker = hosts in TF_CONFIG",
    )
    p.add_argument("--cpu-devices", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument(
        "--checkpoint-every",
        type=float,
        metavar="MINUTES",
        help="save a checkpoint inside an epoch every MINUTES (fractions allowed; "
        "0 = at epoch ends only; default 5); also with --resume",
    )
    p.add_argument(
        "--deterministic",
        action="store_true",
        help="TensorFlow op determinism: the same seed gives the same losses",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override any config value, e.g. --set vae.obs_sigma=0.2",
    )
    p.add_argument("--out", help="run directory (default: experiments/runs/<preset>-<time>)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    p.add_argument(
        "--progress",
        choices=console.PROGRESS,
        help="bar = Keras' progress bar (default on a terminal), epoch = a line per epoch, "
        "lines = a line every 30 s with images/s and the epoch's ETA (default otherwise, e.g. "
        "under make or piped), none",
    )
    return p.parse_args(argv)


def build_config(args: argparse.Namespace) -> config_lib.Config:
    if args.resume:
        path = rundir.RunDir(args.resume).config
        if not path.is_file():
            raise UserError(
                f"cannot resume {args.resume}: it is not a run directory (no {path.name})"
            )
        cfg = config_lib.Config.from_json(path)
        for key, value in (("epochs", args.epochs), ("checkpoint_every", args.checkpoint_every)):
            if value is not None:
                cfg = replace(cfg, train=replace(cfg.train, **{key: value}))
        return config_lib.validate(cfg)
    if not args.preset:
        raise UserError("give --preset NAME (or --resume RUN_DIR)")
    cfg = config_lib.preset(args.preset)
    flags = {
        ("train", "epochs"): args.epochs,
        ("train", "batch_size"): args.batch_size,
        ("vae", "latent_dim"): args.latent_dim,
        ("data", "data_dir"): args.data_dir,
        ("data", "dataset"): args.dataset,
        ("data", "limit"): args.limit,
        ("train", "seed"): args.seed,
        ("train", "precision"): args.precision,
        ("train", "steps_per_execution"): args.steps_per_execution,
        ("train", "checkpoint_every"): args.checkpoint_every,
        ("train", "deterministic"): args.deterministic or None,
        ("train", "strategy"): args.strategy,
    }
    for (section, key), value in flags.items():
        if value is not None:
            cfg = replace(cfg, **{section: replace(getattr(cfg, section), **{key: value})})
    return config_lib.override(config_lib.validate(cfg), args.set)


def settings_line(cfg: config_lib.Config, run_dir: Path, resume: bool) -> str:
    """The effective settings in one line, printed before anything slow starts, so that a run
    started with a mistyped flag or Make variable shows it at once."""
    t = cfg.train
    steps = t.steps_per_epoch
    length = f"{t.epochs} epoch{'s' if t.epochs != 1 else ''}" + (
        f" of {steps} steps" if steps else ""
    )
    data_dir = cfg.data.data_dir or os.environ.get("GAN_VAE_TF_DATA_DIR")
    if cfg.data.data_dir:
        source = f"{cfg.data.dataset} from {cfg.data.data_dir}"
    elif data_dir:
        source = f"{cfg.data.dataset} from $GAN_VAE_TF_DATA_DIR={data_dir}"
    else:  # data.load's search (Keras cache, TFDS, ...) says where it found the data
        source = f"{cfg.data.dataset}: no data folder given"
    if cfg.data.limit:
        source += f" (--limit {cfg.data.limit})"
    verb = "resuming" if resume else "training"
    return (
        f"{verb} {cfg.preset}: {length}, batch {t.batch_size}, precision {t.precision}, "
        f"seed {t.seed}; data: {source}; run directory: {run_dir}"
    )


def _resume_hint(run_dir: Path | None, where: bool = True, workers: int = 1) -> str:
    """What a stopped run's last line says: where its checkpoint stands (when `where`) and the
    command that continues it (on every worker, when there are several)."""
    from gan_vae_tf import checkpoint

    position = checkpoint.saved_position(run_dir) if run_dir is not None else None
    if position is None:
        return "no checkpoint was saved yet, so there is nothing to resume"
    at = f"the checkpoint is at {position}; " if where else ""
    every = ", started on every worker" if workers > 1 else ""
    return f"{at}continue with: python -m gan_vae_tf.train --resume {run_dir}{every}"


def _worker(cfg: config_lib.Config, run_dir: Path, progress: str, resume: bool) -> int:
    """A multiworker task other than the chief: it trains the same steps (the collectives need
    every worker) and saves the same checkpoints, but into a temporary folder it removes at the
    end, so it writes nothing into the run directory, which it only reads to resume."""
    from gan_vae_tf import training

    scratch = Path(tempfile.mkdtemp(prefix="gan_vae_tf-worker-"))
    try:
        rundir.RunDir(scratch).samples.mkdir()
        log.info("worker: the chief writes %s; this task writes only to %s", run_dir, scratch)
        training.train(cfg, scratch, progress, resume_from=run_dir if resume else None)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"worker done; run directory (written by the chief): {run_dir}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    console.setup()
    args = parse_args(argv)
    if args.cpu_devices:
        distribute.split_cpu(args.cpu_devices)
    run_dir: Path | None = None
    created: Path | None = None  # what this start makes, removed if it fails before training
    lock = None
    workers = 1
    try:
        cfg = build_config(args)
        workers = distribute.cluster_size(cfg.train.strategy)
        if workers > 1 and not (args.out or args.resume):
            raise UserError(
                "--strategy multiworker needs --out RUN_DIR, the same on every worker: "
                "a timestamped default would differ from host to host"
            )
        run_dir = Path(args.resume) if args.resume else rundir.new_path(args.out, cfg.preset)
        progress = args.progress or ("bar" if sys.stdout.isatty() else "lines")
        if not distribute.is_chief(cfg.train.strategy):
            log.info("%s", settings_line(cfg, run_dir, bool(args.resume)))
            return _worker(cfg, run_dir, progress, bool(args.resume))
        if not args.resume:
            created = rundir.outermost_missing(rundir.RunDir(run_dir).samples)
        lock = rundir.RunLock(run_dir)  # at once, and before --overwrite removes anything
        if not args.resume:
            rundir.prepare(run_dir, cfg.preset, args.overwrite)
        log.info("%s", settings_line(cfg, run_dir, bool(args.resume)))
        from gan_vae_tf import training  # after console.setup(): it imports TensorFlow

        resume_from = run_dir if args.resume else None
        summary = training.train(cfg, run_dir, progress, resume_from=resume_from)
    except StorageError as e:
        return errors.report(e, f"once there is room, {_resume_hint(run_dir, False, workers)}")
    except ClusterError as e:
        return errors.report(e, _resume_hint(run_dir, workers=workers))
    except errors.REPORTED as e:
        return errors.report(e)
    except Interrupted as e:
        name = signal.Signals(e.signum).name
        what = "stopped" if e.saved else "stopped at once (second signal)"
        print(f"\n{name}: {what}; {_resume_hint(run_dir, workers=workers)}", file=sys.stderr)
        return 128 + e.signum
    except KeyboardInterrupt:
        print(f"\ninterrupted; {_resume_hint(run_dir, workers=workers)}", file=sys.stderr)
        return 130
    finally:
        if lock is not None:
            if not args.resume:  # before the release, so no other process can own the folder
                rundir.remove_failed_start(run_dir, created, lock)
            lock.release()
    final = ", ".join(f"{k} {v:.4g}" for k, v in summary["final"].items())
    print(
        f"done: {summary['epochs']} epochs in {summary['seconds']:.1f} s "
        f"({summary['seconds_per_epoch']:.1f} s/epoch); {final}"
    )
    print(f"run directory: {run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
