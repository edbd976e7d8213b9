"""The run directory: the one module that knows what a run's files are called and how they are
written, so a rename or a new file touches one place.

A run directory holds everything one training run makes (see the README's "What a run
directory holds"). This module owns its layout, its creation, finding the newest runs,
`history.csv` (append, read, truncate), the single atomic-write helper every writer in the
package uses, and the user-level cache folder.
"""

from __future__ import annotations

import csv
import fcntl
import json
import os
import secrets
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from gan_vae_tf.errors import UserError

DEFAULT_ROOT = Path("experiments") / "runs"
CACHE_ENV = "GAN_VAE_TF_CACHE"

CONFIG = "config.json"
HISTORY = "history.csv"
SAMPLES = "samples"
LOSS_CURVES = "loss_curves.png"
MODEL = "model.keras"
SUMMARY = "summary.json"
METRICS = "metrics.json"
CHECKPOINT = "checkpoint"
POSITION = "position.json"  # inside the checkpoint folder, beside the TensorFlow checkpoint
LOCK = ".lock"
TENSORBOARD = "tensorboard"
_SAMPLE_PNG = "epoch_{:04d}.png"
_SAMPLE_GLOB = "epoch_*.png"
_NETWORK = "{}.keras"


class RunDir:
    """Paths of one run directory's files. Cheap to make: it only joins names."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    config = property(lambda self: self.path / CONFIG)
    history = property(lambda self: self.path / HISTORY)
    samples = property(lambda self: self.path / SAMPLES)
    loss_curves = property(lambda self: self.path / LOSS_CURVES)
    model = property(lambda self: self.path / MODEL)
    summary = property(lambda self: self.path / SUMMARY)
    metrics = property(lambda self: self.path / METRICS)
    checkpoint = property(lambda self: self.path / CHECKPOINT)
    lock = property(lambda self: self.path / LOCK)
    tensorboard = property(lambda self: self.path / TENSORBOARD)
    checkpoint_tmp = property(lambda self: self.path / f"{CHECKPOINT}.tmp")
    checkpoint_old = property(lambda self: self.path / f"{CHECKPOINT}.old")

    def sample_png(self, epoch: int) -> Path:
        """The sample grid of epoch `epoch` (counted from 1)."""
        return self.samples / _SAMPLE_PNG.format(epoch)

    def sample_pngs(self) -> list[Path]:
        """Every epoch's sample grid, oldest first."""
        return sorted(self.samples.glob(_SAMPLE_GLOB))

    def network(self, name: str) -> Path:
        """Where one network of the model (generator, encoder, ...) is saved on its own."""
        return self.path / _NETWORK.format(name)

    def holds_run(self) -> bool:
        """Whether a run has started here: a config, a history row or a checkpoint."""
        return any(p.exists() for p in (self.config, self.history, self.checkpoint))

    # history.csv: one row per finished epoch, appended and fsynced as the epoch ends, so a
    # killed run keeps every finished epoch.

    def append_history(self, row: dict[str, float]) -> None:
        new = not self.history.exists()
        with self.history.open("a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(row))
            if new:
                writer.writeheader()
            writer.writerow(row)
            f.flush()
            os.fsync(f.fileno())

    def read_history(self) -> dict[str, list[float]]:
        """history.csv as columns of numbers."""
        with self.history.open(newline="") as f:
            rows = list(csv.DictReader(f))
        columns: dict[str, list[float]] = {k: [] for k in (rows[0] if rows else {})}
        for row in rows:
            for k, v in row.items():
                columns[k].append(float(v))
        return columns

    def truncate_history(self, epochs: int) -> None:
        """Keep only rows of finished epochs <= `epochs` (a kill may fall after the row, before
        the checkpoint), so a resumed run writes every epoch exactly once."""
        if not self.history.exists():
            return
        with self.history.open(newline="") as f:
            reader = csv.DictReader(f)
            fields = reader.fieldnames or []
            rows = [r for r in reader if int(float(r["epoch"])) <= epochs]
        with atomic_path(self.history) as tmp, tmp.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)


def check_finished(path: str | os.PathLike) -> RunDir:
    """The run directory at `path`, or a UserError saying why it is not a finished run: what
    every command that reads a trained model checks first, before anything slow."""
    run = RunDir(path)
    if not run.path.is_dir():
        raise UserError(f"{run.path} is not a directory")
    if not run.config.is_file():
        raise UserError(f"{run.path} is not a run directory: it has no {run.config.name}")
    if not run.model.is_file():
        raise UserError(f"{run.path} has no trained model ({run.model.name}): did training finish?")
    return run


def new_path(out: str | os.PathLike | None, preset: str) -> Path:
    """Where a new run goes: `out`, or a new timestamped folder under `DEFAULT_ROOT`."""
    return Path(out) if out else DEFAULT_ROOT / f"{preset}-{time.strftime('%Y%m%d-%H%M%S')}"


class RunLock:
    """An exclusive `flock` on `RUN_DIR/.lock`, held while one process trains the folder.

    The kernel drops it when its owner exits in any way (kill -9 and OOM kills included), so a
    dead run never blocks its own resume; a second process on a live run fails at once. Take it
    before anything in the folder is read or removed.
    """

    def __init__(self, path: str | os.PathLike):
        path = Path(path)
        try:
            path.mkdir(parents=True, exist_ok=True)
            self.made_file = not (path / LOCK).exists()
            self._file = (path / LOCK).open("a+")
        except OSError as e:
            raise UserError(f"cannot write to run directory {path}: {e.strerror or e}") from None
        try:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._file.seek(0)
            owner = self._file.read().strip() or "unknown"
            self._file.close()
            raise UserError(
                f"run directory {path} is being trained by another process "
                f"(pid {owner}); wait for it to end or stop it, then --resume it"
            ) from None
        self._file.seek(0)
        self._file.truncate()
        self._file.write(f"{os.getpid()}\n")
        self._file.flush()

    def release(self) -> None:
        if not self._file.closed:
            self._file.close()  # closing the descriptor drops the lock


def outermost_missing(path: str | os.PathLike) -> Path | None:
    """The highest folder on the way to `path` that does not exist yet (`path` itself, or e.g.
    `experiments/runs/` on a fresh clone): what starting a run there creates."""
    missing = None
    for folder in (Path(path), *Path(path).parents):
        if folder.exists():
            break
        missing = folder
    return missing


def remove_failed_start(run_dir: str | os.PathLike, created: Path | None, lock: RunLock) -> None:
    """A run that failed before writing its config (missing data, a batch too large, ...)
    leaves nothing behind that its start made. `created` is the highest folder the start made
    (see `outermost_missing`); call this while still holding the run's `lock`.

    Only this run's own folder is removed whole; the parents the start made are removed only
    while empty, so a run another process started beside it meanwhile is never touched. A run
    that wrote its config is kept, and so is anything that was there before."""
    run = RunDir(run_dir)
    if created is None or run.config.exists():
        return
    if run.path in created.parents:  # the run folder was there before: only what is in it
        shutil.rmtree(created, ignore_errors=True)
        if lock.made_file:
            run.lock.unlink(missing_ok=True)
        return
    shutil.rmtree(run.path, ignore_errors=True)
    for parent in run.path.parents:
        if created not in (parent, *parent.parents):
            break
        try:
            parent.rmdir()
        except OSError:  # not empty: someone else's run is in it
            break


def prepare(out: str | os.PathLike | None, preset: str, overwrite: bool) -> RunDir:
    """A writable run directory for a new run: `out`, or a new timestamped folder under
    `DEFAULT_ROOT`. One that already holds a run is refused unless `overwrite`, and then its
    run files and sample images are removed (anything else the user put there stays)."""
    run = RunDir(new_path(out, preset))
    if run.holds_run():
        if not overwrite:
            raise UserError(
                f"run directory {run.path} already holds a run; pass --resume "
                f"{run.path} to continue it, --overwrite to replace it, or another --out"
            )
        for path in (run.history, run.metrics, run.summary):
            path.unlink(missing_ok=True)
        for folder in (run.checkpoint, run.checkpoint_old, run.checkpoint_tmp, run.tensorboard):
            shutil.rmtree(folder, ignore_errors=True)
        for png in run.samples.glob("*.png"):
            png.unlink()
    try:
        run.samples.mkdir(parents=True, exist_ok=True)
        probe = run.path / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise UserError(f"cannot write to run directory {run.path}: {e.strerror or e}") from None
    return run


def latest(root: str | os.PathLike = DEFAULT_ROOT) -> list[Path]:
    """The newest finished run (one with a saved model) of each preset under root."""
    newest: dict[str, Path] = {}
    for model_file in sorted(Path(root).glob(f"*/{MODEL}"), key=lambda p: p.stat().st_mtime):
        try:
            preset = json.loads((model_file.parent / CONFIG).read_text())["preset"]
        except (OSError, ValueError, KeyError):
            continue
        newest[preset] = model_file.parent
    return sorted(newest.values())


def newest(root: str | os.PathLike = DEFAULT_ROOT) -> Path | None:
    """The most recently finished run under root, of any preset (None when there is none)."""
    runs = latest(root)
    return max(runs, key=lambda run: (run / MODEL).stat().st_mtime) if runs else None


def cache_dir(explicit: str | os.PathLike | None = None) -> Path:
    """Where decoded image folders and trained classifiers are kept across runs: `explicit`,
    else $GAN_VAE_TF_CACHE, else ~/.cache/gan_vae_tf."""
    if explicit is not None:
        return Path(explicit).expanduser()
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "gan_vae_tf"


def temp_path(final: str | os.PathLike) -> Path:
    """An unused hidden name beside `final` that keeps its suffix (writers that pick the format
    from it, like Keras and matplotlib, still work), on the same filesystem so a rename onto
    `final` is atomic. Not created here, so the file gets the user's umask."""
    final = Path(final)
    return final.with_name(f".{final.stem}.{os.getpid()}-{secrets.token_hex(4)}.tmp{final.suffix}")


@contextmanager
def atomic_path(final: str | os.PathLike) -> Iterator[Path]:
    """Yields a temporary path to write; when the block succeeds it replaces `final` in one
    rename, so readers (and a run killed mid-write) see the old file or the new one, never
    half of one. On failure the temporary file is removed."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(final)
    try:
        yield tmp
        os.replace(tmp, final)
    except OSError as e:
        if e.filename is not None and Path(e.filename) == tmp:
            e.filename = str(final)  # messages name the file the user knows, not its temporary twin
        raise
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: str | os.PathLike, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_json(path: str | os.PathLike, data: Any) -> Path:
    """Indented JSON with a final newline, written atomically."""
    return write_text(path, json.dumps(data, indent=2) + "\n")
