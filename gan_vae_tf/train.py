"""Train a preset: `python -m gan_vae_tf.train --preset gan-mnist [--epochs N] ...`.

Reads top to bottom: config -> data -> model -> fit with callbacks -> saved models. Everything
the run makes goes into one run directory.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from gan_vae_tf import config as config_lib
from gan_vae_tf import console, distribute, rundir
from gan_vae_tf.errors import ClusterError, Interrupted, NonFiniteLoss, StorageError, UserError

log = logging.getLogger("gan_vae_tf")

LINES = 3  # progress as a line every 30 s (callbacks.ProgressLines): the default off a terminal


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
        "--verbose",
        type=int,
        choices=(0, 1, 2, LINES),
        help="progress: 0 = none, 1 = Keras' bar (default on a terminal), 2 = Keras' "
        f"line per epoch, {LINES} = a line every 30 s with images/s and the "
        "epoch's ETA (default otherwise, e.g. under make or piped)",
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


def train(
    cfg: config_lib.Config,
    run_dir: Path,
    verbose: int = 2,
    resume: bool = False,
    restore_from: Path | None = None,
) -> dict:
    """Train `cfg` into `run_dir` (continuing the checkpoint of `restore_from`, by default
    `run_dir`, when `resume`); returns the summary it also writes into the run directory.
    SIGTERM or Ctrl-C on the way saves a checkpoint at the next step boundary and raises
    Interrupted."""
    strategy = distribute.make(cfg.train.strategy)  # first: multiworker sets up TensorFlow
    from gan_vae_tf import checkpoint

    with checkpoint.StopRequest() as stop:
        return _train(cfg, run_dir, verbose, resume, restore_from or run_dir, strategy, stop)


def _train(
    cfg: config_lib.Config,
    run_dir: Path,
    verbose: int,
    resume: bool,
    restore_from: Path,
    strategy,
    stop,
) -> dict:
    import keras
    import numpy as np
    import tensorflow as tf

    from gan_vae_tf import callbacks, checkpoint, data, models, precision

    run = rundir.RunDir(run_dir)
    if resume:  # not `auto` again: it may resolve differently today (a new rule, another CPU)
        record = json.loads(rundir.RunDir(restore_from).config.read_text())
        policy, why = record["run"]["precision"], "the precision this run started with"
    else:
        policy, why = precision.resolve(cfg.train.precision)
    log.info("precision: %s (%s)", policy, why)
    keras.utils.set_random_seed(cfg.train.seed)
    if cfg.train.deterministic:
        tf.config.experimental.enable_op_determinism()

    dataset = data.load(cfg.data)
    order = data.EpochOrder(
        len(dataset.train),
        cfg.train.batch_size,
        cfg.train.seed,
        steps_per_epoch=cfg.train.steps_per_epoch,
    )
    data.pipeline(dataset.train, cfg, training=True, order=order)  # checks the batch size
    test_ds = data.pipeline(dataset.test, cfg, training=False)
    log.info(
        "data: %s, %d train / %d test images, %d steps per epoch",
        dataset.source,
        len(dataset.train),
        len(dataset.test),
        order.steps,
    )

    fixed = models.MODELS[cfg.model].fixed_inputs(
        cfg, dataset.test, np.random.default_rng(cfg.train.seed)
    )
    with strategy.scope():
        model = models.build(cfg, policy, order.steps)
        state = checkpoint.RunState(model, fixed)
    start = checkpoint.Position(0)
    if resume:
        start = state.restore(restore_from)
        run.truncate_history(start.epoch)
        start = checkpoint.Position(start.epoch, start.step, start.seconds, order.steps)
        log.info("resuming at %s (%d epochs in all)", start.describe(), cfg.train.epochs)
        # --resume --epochs N: the next --resume keeps N, unless N is below what already ran
        changed = cfg.train.epochs != record["train"]["epochs"]
        if changed and cfg.train.epochs >= start.epoch:
            record["train"]["epochs"] = cfg.train.epochs
            rundir.write_json(run.config, record)
    else:
        record = cfg.to_dict()
        record["run"] = {
            "data": dataset.describe(),
            "precision": policy,
            "precision_reason": why,
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        rundir.write_json(run.config, record)
    fixed = {k: v.numpy() for k, v in state.fixed.items()}
    render = model.renderer(fixed)
    rows = callbacks.HistoryCSV(run_dir, title=f"{cfg.preset} ({dataset.source})")
    if start.step:
        rows.carry(start.epoch, start.seconds)
    saver = checkpoint.Checkpoint(
        run_dir,
        state,
        order,
        cfg.train.checkpoint_every * 60,
        start,
        stop,
        agree=distribute.agreement(strategy),
    )
    grid = callbacks.SampleGrid(run_dir, render)
    if resume:
        callbacks.truncate_events(run.tensorboard, start.epoch)
    images_per_epoch = order.steps * cfg.train.batch_size
    board = callbacks.TensorBoardLog(run.tensorboard, images_per_epoch, rows, grid)
    cbs = [callbacks.NonFiniteGuard(), grid, rows, board, saver]
    progress = None
    if verbose == LINES:
        progress = callbacks.ProgressLines(cfg.train.epochs, cfg.train.batch_size, order.steps)
        progress.first_step = start.step
        cbs.append(progress)
    fit = dict(
        epochs=cfg.train.epochs,
        callbacks=cbs,
        verbose=0 if verbose == LINES else verbose,
        shuffle=False,
        validation_data=test_ds if model.validates else None,
    )
    try:
        epoch = start.epoch
        if start.step and epoch < cfg.train.epochs:
            # The rest of the epoch the stopped run was in: one fit() over its unseen batches.
            saver.stop_after_epoch = epoch
            model.fit(
                data.pipeline(dataset.train, cfg, True, order=order, first_step=start.step),
                initial_epoch=epoch,
                **fit,
            )
            saver.stop_after_epoch = None
            epoch += 1
        if epoch < cfg.train.epochs:
            model.fit(
                data.pipeline(dataset.train, cfg, True, order=order), initial_epoch=epoch, **fit
            )
        nets = {
            run.model: inference_copy(model, cfg, policy),
            **{run.network(n): net for n, net in model.networks().items()},
        }
        for path, net in nets.items():
            with rundir.atomic_path(path) as tmp:
                net.save(tmp)
    except OSError as e:  # a history row, sample grid or saved model that could not be written
        raise StorageError(
            f"could not write {e.filename or 'to ' + str(run_dir)} "
            f"({e.strerror or e}); the last checkpoint is kept"
        ) from None
    except distribute.cluster_errors() as e:
        if distribute.num_workers(strategy) < 2:
            raise
        raise ClusterError(
            f"lost contact with another worker ({distribute.cluster_error_reason(e)})"
        ) from None
    finally:
        board.close()
    history = run.read_history()
    seconds = float(sum(history["seconds"]))
    summary = {
        "epochs": len(history["epoch"]),
        "seconds": round(seconds, 2),
        "seconds_per_epoch": round(seconds / len(history["epoch"]), 2),
        "images_per_second": round(images_per_epoch * len(history["epoch"]) / seconds, 1),
        "precision": policy,
        "final": {k: v[-1] for k, v in history.items() if k not in ("epoch", "seconds")},
    }
    rundir.write_json(run.summary, summary)
    return summary


def inference_copy(model, cfg: config_lib.Config, policy: str):
    """The trained model without its optimizers, for the run's model file: that is for sampling,
    evaluating and sharing, and `checkpoint/` already holds the optimizer state, which for Adam
    is twice the size of the weights."""
    from gan_vae_tf import models

    twin = models.MODELS[cfg.model].from_run_config(cfg, policy)
    twins = twin.networks()
    for name, net in model.networks().items():
        twins[name].set_weights(net.get_weights())
    return twin


def _resume_hint(run_dir: Path | None, where: bool = True, workers: int = 1) -> str:
    """What a stopped run's last line says: where its checkpoint stands (when `where`) and the
    command that continues it (on every worker, when there are several)."""
    from gan_vae_tf import checkpoint

    position = checkpoint.saved_position(run_dir) if run_dir is not None else None
    if position is None:
        return "no checkpoint was saved yet, so there is nothing to resume"
    at = f"the checkpoint is at {position.describe()}; " if where else ""
    every = ", started on every worker" if workers > 1 else ""
    return f"{at}continue with: python -m gan_vae_tf.train --resume {run_dir}{every}"


def _worker(cfg: config_lib.Config, run_dir: Path, verbose: int, resume: bool) -> int:
    """A multiworker task other than the chief: it trains the same steps (the collectives need
    every worker) and saves the same checkpoints, but into a temporary folder it removes at the
    end, so it writes nothing into the run directory, which it only reads to resume."""
    scratch = Path(tempfile.mkdtemp(prefix="gan_vae_tf-worker-"))
    try:
        rundir.RunDir(scratch).samples.mkdir()
        log.info("worker: the chief writes %s; this task writes only to %s", run_dir, scratch)
        train(cfg, scratch, verbose, resume=resume, restore_from=run_dir)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"worker done; run directory (written by the chief): {run_dir}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    console.setup()
    args = parse_args(argv)
    if args.cpu_devices:
        from gan_vae_tf.distribute import split_cpu

        split_cpu(args.cpu_devices)
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
        verbose = (
            args.verbose if args.verbose is not None else (1 if sys.stdout.isatty() else LINES)
        )
        if not distribute.is_chief(cfg.train.strategy):
            log.info("%s", settings_line(cfg, run_dir, bool(args.resume)))
            return _worker(cfg, run_dir, verbose, bool(args.resume))
        if not args.resume:
            created = rundir.outermost_missing(rundir.RunDir(run_dir).samples)
        lock = rundir.RunLock(run_dir)  # at once, and before --overwrite removes anything
        if not args.resume:
            rundir.prepare(run_dir, cfg.preset, args.overwrite)
        log.info("%s", settings_line(cfg, run_dir, bool(args.resume)))
        summary = train(cfg, run_dir, verbose, resume=bool(args.resume))
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except NonFiniteLoss as e:
        print(f"error: {e}", file=sys.stderr)
        return 3
    except StorageError as e:
        print(
            f"error: {e}; once there is room, {_resume_hint(run_dir, False, workers)}",
            file=sys.stderr,
        )
        return 4
    except ClusterError as e:
        print(f"error: {e}; {_resume_hint(run_dir, workers=workers)}", file=sys.stderr)
        return 5
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
