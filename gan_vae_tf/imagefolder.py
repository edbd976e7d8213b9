"""Decode a user's folder of images once into a uint8 array cached on disk.

Training reads the cached ``.npy`` through a read-only memmap, so JPEG decoding
is paid once per folder version and memory stays bounded however large the
folder is.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import os
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from gan_vae_tf import rundir
from gan_vae_tf.errors import UserError

IMAGE_EXTENSIONS: frozenset[str] = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp"})

# Bump when decoding or the cache layout changes, so old caches are not trusted.
_CACHE_FORMAT = 1
_BATCH = 256
_WARN_NAMES = 5

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FolderImages:
    """Decoded images of a folder, plus which files fed which row and which were unreadable."""

    images: np.ndarray
    paths: tuple[str, ...]
    skipped: tuple[str, ...]


def list_image_files(root: str | os.PathLike) -> list[str]:
    """Every image file under root, recursively, sorted; non-image files ignored.

    Hidden files and folders (names starting with ".") are left out: they are
    tool debris such as macOS ``._x.jpg`` resource forks or
    ``.ipynb_checkpoints``, not training data.
    """
    top = os.fspath(root)
    found: list[str] = []
    for folder, subdirs, files in os.walk(top):
        subdirs[:] = [d for d in subdirs if not d.startswith(".")]
        found.extend(
            os.path.join(folder, name)
            for name in files
            if not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS
        )
    return sorted(found)


def load_image_folder(
    root: str | os.PathLike,
    image_size: int,
    channels: int = 3,
    limit: int | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> FolderImages:
    """Images under root as uint8 (N, image_size, image_size, channels), centre-cropped and resized.

    Decoded rows are cached under ``cache_dir/folders``; a later call with the
    same folder contents and settings maps the cache instead of decoding.
    Files that cannot be decoded are dropped and reported by one warning.
    """
    _check_settings(image_size, channels, limit)
    top = os.path.abspath(os.fspath(root))
    files = _chosen_files(top, limit)
    rel = [os.path.relpath(p, top) for p in files]
    key = _cache_key(top, image_size, channels, limit, files, rel)
    folder = rundir.cache_dir(cache_dir) / "folders"
    npy_path = folder / f"{key}.npy"
    json_path = folder / f"{key}.json"

    cached = _read_cache(npy_path, json_path, key)
    if cached is not None:
        images, kept_rel, skipped_rel = cached
        log.info("using cached decode of %s (%d images) from %s", top, len(kept_rel), npy_path)
    else:
        log.info("decoding %d image files from %s", len(files), top)
        folder.mkdir(parents=True, exist_ok=True)
        kept = _decode_to_npy(files, image_size, channels, npy_path, json_path)
        if not kept:
            raise UserError(
                f"none of the {len(files)} image files in {top} could be decoded "
                f"(e.g. {rel[0]}): put readable JPEG/PNG/BMP/GIF/WebP images there"
            )
        kept_rel = [rel[i] for i in kept]
        kept_set = set(kept)
        skipped_rel = [r for i, r in enumerate(rel) if i not in kept_set]
        shape = (len(kept_rel), image_size, image_size, channels)
        meta = _metadata(key, top, image_size, channels, limit, shape, kept_rel, skipped_rel)
        rundir.write_text(json_path, json.dumps(meta))
        images = np.load(npy_path, mmap_mode="r")

    if skipped_rel:
        names = ", ".join(skipped_rel[:_WARN_NAMES]) + (
            ", ..." if len(skipped_rel) > _WARN_NAMES else ""
        )
        warnings.warn(
            f"skipped {len(skipped_rel)} of {len(files)} files in {top} that could not be decoded: {names}",
            stacklevel=2,
        )
    return FolderImages(
        images=images,
        paths=tuple(os.path.join(top, r) for r in kept_rel),
        skipped=tuple(os.path.join(top, r) for r in skipped_rel),
    )


def _check_settings(image_size: int, channels: int, limit: int | None) -> None:
    """Reject settings that would otherwise fail deep inside TensorFlow."""
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1:
        raise UserError(f"image size must be a positive integer, got {image_size!r}")
    if channels not in (1, 3):
        raise UserError(f"channels must be 1 (grayscale) or 3 (RGB), got {channels!r}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise UserError(f"limit must be a positive integer or None, got {limit!r}")


def _chosen_files(top: str, limit: int | None) -> list[str]:
    """The files to decode, or a UserError saying what is wrong with the folder."""
    if not os.path.exists(top):
        raise UserError(
            f"image folder {top} does not exist: create it and put your image files in it"
        )
    if not os.path.isdir(top):
        raise UserError(f"{top} is not a folder: pass the folder that holds your image files")
    files = list_image_files(top)
    if not files:
        exts = " ".join(sorted(IMAGE_EXTENSIONS))
        raise UserError(
            f"no image files ({exts}) found in {top} or its subfolders: put your images there"
        )
    return files if limit is None else files[:limit]


def _cache_key(
    top: str, image_size: int, channels: int, limit: int | None, files: list[str], rel: list[str]
) -> str:
    """Name of the cache entry; changes whenever a chosen file is added, removed, resized or touched.

    The TensorFlow version is hashed too, because its decoders and resize are
    what produced the cached pixels.
    """
    digest = hashlib.sha256()
    header = [_CACHE_FORMAT, _tensorflow_version(), top, image_size, channels, limit]
    digest.update(json.dumps(header).encode())
    for path, name in zip(files, rel, strict=True):
        st = os.stat(path)
        digest.update(json.dumps([name, st.st_size, st.st_mtime_ns]).encode())
        digest.update(b"\n")
    label = re.sub(r"[^A-Za-z0-9_-]+", "_", os.path.basename(top))[:40] or "root"
    return f"{label}-{image_size}px-{channels}ch-{digest.hexdigest()[:20]}"


def _tensorflow_version() -> str:
    """Installed TensorFlow version, read from package metadata so a cache hit never imports TF."""
    for dist in ("tensorflow", "tensorflow-cpu", "tf-nightly"):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "unknown"


def _read_cache(
    npy_path: Path, json_path: Path, key: str
) -> tuple[np.ndarray, list[str], list[str]] | None:
    """The cached entry if its metadata was fully written and agrees with the array file, else None."""
    try:
        meta = json.loads(json_path.read_text(encoding="utf-8"))
        if meta.get("format") != _CACHE_FORMAT or meta.get("key") != key:
            return None
        kept, skipped, shape = list(meta["paths"]), list(meta["skipped"]), tuple(meta["shape"])
        images = np.load(npy_path, mmap_mode="r")
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if images.dtype != np.uint8 or images.shape != shape or len(kept) != shape[0]:
        return None
    return images, kept, skipped


def _decode_to_npy(
    files: list[str], image_size: int, channels: int, npy_path: Path, json_path: Path
) -> list[int]:
    """Stream decoded rows into npy_path (atomically) and return the indices of the files that
    decoded. When none did, npy_path is left alone."""
    json_path.unlink(missing_ok=True)
    shape = (len(files), image_size, image_size, channels)
    kept: list[int] = []
    try:
        with rundir.atomic_path(npy_path) as tmp:
            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=shape)
            for indices, batch in _decoded_batches(files, image_size, channels):
                start = len(kept)
                out[start : start + len(indices)] = batch
                kept.extend(int(i) for i in indices)
            out.flush()
            del out
            if not kept:
                raise _NothingDecoded  # leaves the block without replacing npy_path
            if len(kept) < len(files):
                _keep_first_rows(tmp, len(kept))
    except _NothingDecoded:
        return []
    return kept


class _NothingDecoded(Exception):
    pass


def _keep_first_rows(npy_path: Path, rows: int, chunk: int = 4096) -> None:
    """Rewrite a .npy file with only its first `rows` rows, a chunk at a time (it may be larger
    than memory)."""
    full = np.load(npy_path, mmap_mode="r")
    with rundir.atomic_path(npy_path) as tmp:
        small = np.lib.format.open_memmap(
            tmp, mode="w+", dtype=full.dtype, shape=(rows, *full.shape[1:])
        )
        for start in range(0, rows, chunk):
            small[start : start + chunk] = full[start : min(start + chunk, rows)]
        small.flush()
        del small
    del full


def _decoded_batches(
    files: list[str], image_size: int, channels: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(file indices, uint8 images) in file order, decoded in parallel; undecodable files are dropped."""

    def decode(index: tf.Tensor, path: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        # Always decode as RGB: TF's BMP, GIF and WebP decoders reject channels=1,
        # and channels=0 on an animated WebP corrupts the heap (TF 2.21).
        image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        height, width = tf.shape(image)[0], tf.shape(image)[1]
        side = tf.minimum(height, width)
        top, left = (height - side) // 2, (width - side) // 2
        image = image[top : top + side, left : left + side]
        image = tf.image.resize(image, [image_size, image_size], method="bilinear", antialias=True)
        if channels == 1:
            image = tf.image.rgb_to_grayscale(image)
        image = tf.cast(tf.clip_by_value(tf.round(image), 0.0, 255.0), tf.uint8)
        return index, tf.ensure_shape(image, [image_size, image_size, channels])

    encoded = [os.fsencode(p) for p in files]
    dataset = (
        tf.data.Dataset.from_tensor_slices((np.arange(len(files), dtype=np.int64), encoded))
        .map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .ignore_errors()
        .batch(_BATCH)
        .prefetch(1)
    )
    yield from dataset.as_numpy_iterator()


def _metadata(
    key: str,
    top: str,
    image_size: int,
    channels: int,
    limit: int | None,
    shape: tuple[int, ...],
    kept: list[str],
    skipped: list[str],
) -> dict[str, Any]:
    """What the json beside the array records; read back to validate and rebuild FolderImages."""
    return {
        "format": _CACHE_FORMAT,
        "key": key,
        "root": top,
        "image_size": image_size,
        "channels": channels,
        "limit": limit,
        "shape": list(shape),
        "dtype": "uint8",
        "paths": kept,
        "skipped": skipped,
    }
