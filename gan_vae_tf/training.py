"""Training a config into a run directory: the steps `python -m gan_vae_tf.train` runs.

`train()` reads top to bottom: precision, seed, data, model, a fresh run record or a restored
checkpoint, callbacks, fit, saved models, summary. Everything the run makes goes into one run
directory; `train.py` is the command line around it.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from gan_vae_tf import callbacks, checkpoint, data, distribute, kinds, precision, rundir
from gan_vae_tf.config import Config
from gan_vae_tf.errors import ClusterError, StorageError

log = logging.getLogger(__name__)

#: Keras' `verbose` for each of `console.PROGRESS`: "lines" is a callback of the package's own.
KERAS_VERBOSE = {"bar": 1, "epoch": 2, "lines": 0, "none": 0}


def train(
    cfg: Config,
    run_dir: Path,
    progress: str = "epoch",
    resume_from: Path | None = None,
) -> dict:
    """Train `cfg` into `run_dir` and return the summary it also writes there. A fresh run
    when `resume_from` is None, else one that continues the checkpoint of that run directory
    (usually `run_dir` itself). `progress` is one of `console.PROGRESS`. SIGTERM or Ctrl-C on the way
    saves a checkpoint at the next step boundary and raises Interrupted."""
    strategy = distribute.make(cfg.train.strategy)  # first: multiworker sets up TensorFlow
    with checkpoint.StopRequest() as stop:
        return _train(cfg, rundir.RunDir(run_dir), progress, resume_from, strategy, stop)


def _train(cfg, run, progress: str, resume_from: Path | None, strategy, stop) -> dict:
    kind = kinds.of(cfg)
    policy, why = _precision(cfg, resume_from)
    _seed(cfg)
    dataset, order = _data(cfg)
    grid_inputs = kind.grid_inputs(cfg, dataset, np.random.default_rng(cfg.train.seed))
    with strategy.scope():
        model = kinds.build(cfg, policy, order.steps)
        state = checkpoint.RunState(model, grid_inputs)
    if resume_from is None:
        start = checkpoint.Position(0)
        _write_run_record(cfg, run, dataset, policy, why)
    else:
        start = _restore(cfg, run, state, resume_from, order)
    history, grid, board, saver = _callbacks(
        cfg, run, kind, dataset, state, order, start, stop, strategy
    )
    steps = [callbacks.NonFiniteGuard(), grid, history, board, saver]
    if progress == "lines":
        steps.append(
            callbacks.ProgressLines(
                cfg.train.epochs, cfg.train.batch_size, order.steps, first_step=start.step
            )
        )
    try:
        _fit(cfg, model, kind, dataset, order, start, saver, steps, progress)
        _save_models(cfg, run, kind, model, policy)
    except OSError as e:  # a history row, sample grid or saved model that could not be written
        raise StorageError(
            f"could not write {e.filename or 'to ' + str(run.path)} "
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
    return _summary(run, order.steps * cfg.train.batch_size, policy)


def _precision(cfg: Config, resume_from: Path | None) -> tuple[str, str]:
    """The dtype policy and why: the one a resumed run started with (`auto` may resolve
    differently today, after a new rule or on another CPU), else the config's, resolved."""
    if resume_from is None:
        policy, why = precision.resolve(cfg.train.precision)
    else:
        record = json.loads(rundir.RunDir(resume_from).config.read_text())
        policy, why = record["run"]["precision"], "the precision this run started with"
    log.info("precision: %s (%s)", policy, why)
    return policy, why


def _seed(cfg: Config) -> None:
    keras.utils.set_random_seed(cfg.train.seed)
    if cfg.train.deterministic:
        tf.config.experimental.enable_op_determinism()


def _data(cfg: Config):
    """The dataset's splits and the order its batches are trained in."""
    dataset = data.load(cfg.data)
    order = data.EpochOrder(
        len(dataset.train),
        cfg.train.batch_size,
        cfg.train.seed,
        steps_per_epoch=cfg.train.steps_per_epoch,
    )
    data.check_batch_size(cfg.train.batch_size, len(dataset.train))
    log.info(
        "data: %s, %d train / %d test images, %d steps per epoch",
        dataset.source,
        len(dataset.train),
        len(dataset.test),
        order.steps,
    )
    return dataset, order


def _write_run_record(cfg: Config, run, dataset, policy: str, why: str) -> None:
    """config.json: the config, and what this run found (data, precision, versions)."""
    record = cfg.to_dict()
    record["run"] = {
        "data": dataset.provenance(),
        "precision": policy,
        "precision_reason": why,
        "cpu": precision.cpu_name(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    rundir.write_json(run.config, record)


def _restore(cfg: Config, run, state, resume_from: Path, order):
    """Load the checkpoint, drop history rows and TensorBoard epochs after it, and keep a new
    `--epochs` in the run's config for the next resume (unless it is below what already ran)."""
    saved = state.restore(resume_from)
    run.truncate_history(saved.epoch)
    start = checkpoint.Position(saved.epoch, saved.step, saved.seconds, order.steps)
    log.info("resuming at %s (%d epochs in all)", start, cfg.train.epochs)
    record = json.loads(rundir.RunDir(resume_from).config.read_text())
    if cfg.train.epochs != record["train"]["epochs"] and cfg.train.epochs >= start.epoch:
        record["train"]["epochs"] = cfg.train.epochs
        rundir.write_json(run.config, record)
    callbacks.truncate_events(run.tensorboard, start.epoch)
    return start


def _callbacks(cfg, run, kind, dataset, state, order, start, stop, strategy):
    """The callbacks that write the run directory: history rows, sample grids, TensorBoard
    and checkpoints (fit() runs them in `_train`'s order, so a checkpoint comes after its
    epoch's files)."""
    inputs = {k: v.numpy() for k, v in state.grid_inputs.items()}  # restored when resumed
    history = callbacks.HistoryCSV(run.path, title=f"{cfg.preset} ({dataset.source})")
    if start.step:
        history.carry(start.epoch, start.seconds)
    grid = callbacks.SampleGrid(run.path, lambda model: kind.draw_grid(model, inputs))
    board = callbacks.TensorBoardLog(
        run.tensorboard, order.steps * cfg.train.batch_size, history, grid
    )
    saver = checkpoint.Checkpoint(
        run.path,
        state,
        order,
        cfg.train.checkpoint_every * 60,
        start,
        stop,
        agree=distribute.agreement(strategy),
    )
    return history, grid, board, saver


def _fit(cfg, model, kind, dataset, order, start, saver, steps, progress: str) -> None:
    """fit() from `start` to the last epoch: first the rest of a stopped epoch, over its
    unseen batches only, then every epoch after it."""
    pixels = kind.pixels(cfg)
    train_labels = kind.labels(cfg, dataset.train_labels, "training")
    test_labels = kind.labels(cfg, dataset.test_labels, "test")
    fit = dict(
        epochs=cfg.train.epochs,
        callbacks=steps,
        verbose=KERAS_VERBOSE[progress],
        shuffle=False,
        validation_data=(
            data.pipeline(dataset.test, cfg, pixels, training=False, labels=test_labels)
            if kind.validates
            else None
        ),
    )
    epoch = start.epoch
    if start.step and epoch < cfg.train.epochs:
        saver.stop_after_epoch = epoch
        rest = data.pipeline(
            dataset.train,
            cfg,
            pixels,
            training=True,
            order=order,
            first_step=start.step,
            labels=train_labels,
        )
        model.fit(rest, initial_epoch=epoch, **fit)
        saver.stop_after_epoch = None
        epoch += 1
    if epoch < cfg.train.epochs:
        batches = data.pipeline(
            dataset.train, cfg, pixels, training=True, order=order, labels=train_labels
        )
        model.fit(batches, initial_epoch=epoch, **fit)


def _save_models(cfg, run, kind, model, policy: str) -> None:
    """model.keras without optimizer state (that is for sampling, evaluating and sharing;
    `checkpoint/` already holds the optimizer, which for Adam is twice the weights), and each
    network on its own."""
    twin = kind.build(cfg, policy)
    twin.set_weights(model.get_weights())  # every network's, and the model's own (a learned scale)
    files = {run.model: twin, **{run.network(n): net for n, net in model.networks().items()}}
    for path, net in files.items():
        with rundir.atomic_path(path) as tmp:
            net.save(tmp)


def _summary(run, images_per_epoch: int, policy: str) -> dict:
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
