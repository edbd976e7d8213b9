"""A reader for LeCun's IDX files (MNIST, Fashion-MNIST), gzipped or raw.

Checks the header against the payload, so a truncated download or a label file paired with the
wrong image file is an error that names the file instead of a silently wrong dataset.
"""

from __future__ import annotations

import gzip
import os
import struct

import numpy as np

from gan_vae_tf.errors import UserError

_DTYPES = {
    0x08: np.uint8,
    0x09: np.int8,
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    path = os.fspath(path)
    try:
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        raise UserError(f"cannot read IDX file {path}: {e}") from None
    if len(raw) < 4:
        raise UserError(f"{path} is not an IDX file: only {len(raw)} bytes")
    zero, type_code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or type_code not in _DTYPES or ndim == 0:
        raise UserError(f"{path} is not an IDX file: bad magic number {raw[:4].hex()}")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise UserError(
            f"{path} is truncated: the header needs {header} bytes, file has {len(raw)}"
        )
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = np.dtype(_DTYPES[type_code])
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(raw) != expected:
        what = "truncated" if len(raw) < expected else "longer than its header says"
        raise UserError(
            f"{path} is {what}: header {shape} needs {expected} bytes, file has {len(raw)}"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)


def read_idx_pair(
    images_path: str | os.PathLike, labels_path: str | os.PathLike
) -> tuple[np.ndarray, np.ndarray]:
    """Images as (N, H, W) uint8 and labels as (N,) uint8, checked to belong together."""
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise UserError(f"{images_path} does not hold uint8 images (shape {images.shape})")
    if labels.ndim != 1:
        raise UserError(f"{labels_path} does not hold labels (shape {labels.shape})")
    if len(images) != len(labels):
        raise UserError(
            f"{images_path} has {len(images)} images but {labels_path} has "
            f"{len(labels)} labels: the files do not belong together"
        )
    return images, labels.astype(np.uint8)
