"""Pictures: image grids, curves, latent plots and GIFs from arrays, written atomically. Nothing
here touches a model: latent figures take a `decode` function of arrays."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from statistics import NormalDist

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from PIL import Image

from gan_vae_tf.rundir import atomic_path


def to_uint8(images: np.ndarray, value_range: tuple[float, float] = (0.0, 1.0)) -> np.ndarray:
    lo, hi = value_range
    x = (np.asarray(images, dtype=np.float32) - lo) / (hi - lo)
    return np.clip(np.round(x * 255.0), 0, 255).astype(np.uint8)


def grid(images: np.ndarray, ncol: int | None = None, pad: int = 2) -> np.ndarray:
    """(N, H, W, C) uint8 -> one (rows*H, ncol*W, C) uint8 mosaic with white gutters."""
    n, h, w, c = images.shape
    ncol = ncol or int(math.ceil(math.sqrt(n)))
    nrow = int(math.ceil(n / ncol))
    out = np.full((nrow * (h + pad) + pad, ncol * (w + pad) + pad, c), 255, np.uint8)
    for i, img in enumerate(images):
        r, k = divmod(i, ncol)
        out[
            pad + r * (h + pad) : pad + r * (h + pad) + h,
            pad + k * (w + pad) : pad + k * (w + pad) + w,
        ] = img
    return out


def side_by_side(left: np.ndarray, right: np.ndarray, gap: int = 8) -> np.ndarray:
    h = max(left.shape[0], right.shape[0])
    c = max(left.shape[2], right.shape[2])
    out = np.full((h, left.shape[1] + gap + right.shape[1], c), 255, np.uint8)
    out[: left.shape[0], : left.shape[1]] = left
    out[: right.shape[0], left.shape[1] + gap :] = right
    return out


def save_png(image: np.ndarray, path: str | os.PathLike, scale: int = 1) -> Path:
    """Write atomically (temp file + rename) so a killed run never leaves half a PNG."""
    path = Path(path)
    img = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG")
    return path


def reconstruction_grid(originals: np.ndarray, recon: np.ndarray) -> np.ndarray:
    """Originals in the top row, their reconstructions below (both in [0, 1])."""
    return grid(to_uint8(np.concatenate([originals, recon])), len(originals))


def loss_curves(
    history: dict[str, Sequence[float]], path: str | os.PathLike, title: str = ""
) -> Path:
    """One panel per group of related columns: losses, discriminator outputs, ELBO terms."""
    epochs = history.get("epoch") or list(range(1, 1 + len(next(iter(history.values()), []))))
    groups = [
        ("loss", [k for k in history if k.endswith("loss")]),
        (
            "D output (probability)",
            [k for k in history if k.startswith(("d_real", "d_fake", "val_d_"))],
        ),
        ("nats per image", [k for k in history if k.endswith(("elbo", "log_px_z", "kl"))]),
    ]
    groups = [(label, keys) for label, keys in groups if keys]
    fig = Figure(figsize=(5 * len(groups), 3.6))
    axes = fig.subplots(1, len(groups), squeeze=False)
    for ax, (label, keys) in zip(axes[0], groups, strict=True):
        for key in keys:
            ax.plot(epochs, history[key], marker="o", ms=3, label=key)
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    return path


Decode = Callable[[np.ndarray], np.ndarray]
_DECODE_BATCH = 256


def _decoded_tiles(decode: Decode, codes: np.ndarray, image_size: int | None = None) -> np.ndarray:
    """Decode in batches (a 20x20 manifold of 64x64 faces is 400 images) and return uint8
    (k, H, W, C) tiles, optionally resized to `image_size` pixels a side."""
    codes = np.asarray(codes, dtype=np.float32)
    images = np.concatenate(
        [
            np.asarray(decode(codes[i : i + _DECODE_BATCH]))
            for i in range(0, len(codes), _DECODE_BATCH)
        ]
    )
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or len(images) != len(codes):
        raise ValueError(
            f"decode must map (k, D) codes to (k, H, W, C) images; got {images.shape} "
            f"for {len(codes)} codes"
        )
    tiles = to_uint8(images)
    if image_size and image_size != tiles.shape[1]:
        method = Image.NEAREST if image_size > tiles.shape[1] else Image.LANCZOS
        resized = [
            np.asarray(
                Image.fromarray(t[..., 0] if t.shape[-1] == 1 else t).resize(
                    (image_size, image_size), method
                )
            )
            for t in tiles
        ]
        tiles = np.stack(resized).reshape(len(tiles), image_size, image_size, tiles.shape[-1])
    return tiles


def normal_quantiles(n: int, lo: float = 0.05, hi: float = 0.95) -> np.ndarray:
    """`n` evenly spaced quantiles of N(0, 1): a grid that covers the prior's mass evenly,
    unlike an evenly spaced grid of z values."""
    dist = NormalDist()
    return np.array([dist.inv_cdf(float(p)) for p in np.linspace(lo, hi, n)], dtype=np.float32)


def latent_manifold(
    decode: Decode,
    path: str | os.PathLike,
    n: int = 20,
    image_size: int | None = None,
    quantiles: tuple[float, float] = (0.05, 0.95),
    pad: int = 0,
) -> Path:
    """An n x n mosaic of what a 2-D latent space decodes to, over the prior's quantiles.

    Columns step z[0] from low to high, rows step z[1] from high (top) to low, like a plot's
    axes. `decode` maps (k, 2) codes to (k, H, W, C) images in [0, 1]; `image_size` resizes
    the tiles.
    """
    if n < 1:
        raise ValueError(f"n must be positive, got {n}")
    z = normal_quantiles(n, *quantiles)
    z0, z1 = np.meshgrid(z, z[::-1])
    codes = np.stack([z0.ravel(), z1.ravel()], axis=1)
    return save_png(grid(_decoded_tiles(decode, codes, image_size), ncol=n, pad=pad), path)


def principal_axes(x: np.ndarray, k: int = 2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(centre, the first k principal directions as rows, the std along each) of points x.
    Each direction's largest component is positive, so the axes do not flip between runs of
    the same data."""
    x = np.asarray(x, dtype=np.float64)
    centre = x.mean(axis=0)
    _, s, vt = np.linalg.svd(x - centre, full_matrices=False)
    directions = vt[:k] * np.sign(vt[:k][np.arange(k), np.argmax(np.abs(vt[:k]), axis=1)])[:, None]
    return centre, directions, s[:k] / np.sqrt(max(len(x) - 1, 1))


def latent_walk(
    decode: Decode,
    means: np.ndarray,
    path: str | os.PathLike,
    n: int = 11,
    spread: float = 2.0,
    image_size: int | None = None,
) -> Path:
    """What a latent space of any size decodes to along its two main directions: an n x n
    mosaic of codes centre + a s1 v1 + b s2 v2, where v1, v2 are the first two principal
    directions of the encoder's means, s1, s2 their stds, and a, b step from -spread to
    +spread. Columns step along v1 (left to right), rows along v2 (bottom to top), like the
    latent manifold of a 2-d latent space."""
    if n < 2:
        raise ValueError(f"n must be at least 2, got {n}")
    centre, (v1, v2), (s1, s2) = principal_axes(means)
    steps = np.linspace(-spread, spread, n)
    a, b = np.meshgrid(steps, steps[::-1])
    codes = centre + (a.ravel()[:, None] * s1) * v1 + (b.ravel()[:, None] * s2) * v2
    return save_png(grid(_decoded_tiles(decode, codes, image_size), ncol=n, pad=0), path)


def _principal_components(x: np.ndarray) -> tuple[np.ndarray, float]:
    """Projection onto the first two principal components and the variance share they keep."""
    centred = x - x.mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    share = float((s[:2] ** 2).sum() / max((s**2).sum(), 1e-12))
    return centred @ vt[:2].T, share


def latent_scatter(
    means: np.ndarray,
    labels: np.ndarray | None,
    path: str | os.PathLike,
    title: str = "",
    max_classes: int = 20,
) -> Path:
    """Encoder means in the plane, coloured by label, to show how classes spread in z.

    Latents wider than 2 are projected on their first two principal components (said in the
    title). Integer labels with at most `max_classes` values get one discrete colour each;
    other labels a continuous colour bar.
    """
    means = np.asarray(means, dtype=np.float64)
    if means.ndim != 2 or means.shape[1] < 2:
        raise ValueError(f"means must be (N, D) with D >= 2, got shape {means.shape}")
    if means.shape[1] == 2:
        xy, axis_names, note = means, ("z[0]", "z[1]"), ""
    else:
        xy, share = _principal_components(means)
        axis_names = ("PC 1", "PC 2")
        note = (
            f"first two principal components of the {means.shape[1]}-d means "
            f"({share:.0%} of variance)"
        )
    fig = Figure(figsize=(6.4, 5.4))
    ax = fig.add_subplot()
    style = dict(s=4, alpha=0.7, linewidths=0)
    if labels is None:
        ax.scatter(xy[:, 0], xy[:, 1], **style)
    else:
        labels = np.asarray(labels).ravel()
        if len(labels) != len(means):
            raise ValueError(f"{len(labels)} labels for {len(means)} means")
        classes = np.unique(labels)
        if np.issubdtype(labels.dtype, np.integer) and len(classes) <= max_classes:
            index = np.searchsorted(classes, labels)
            cmap = colormaps["tab10" if len(classes) <= 10 else "tab20"].resampled(len(classes))
            points = ax.scatter(
                xy[:, 0], xy[:, 1], c=index, cmap=cmap, vmin=-0.5, vmax=len(classes) - 0.5, **style
            )
            bar = fig.colorbar(points, ax=ax, ticks=range(len(classes)))
            bar.ax.set_yticklabels([str(c) for c in classes])
        else:
            points = ax.scatter(
                xy[:, 0], xy[:, 1], c=labels.astype(np.float64), cmap="viridis", **style
            )
            bar = fig.colorbar(points, ax=ax)
        bar.set_label("label")
    ax.set_xlabel(axis_names[0])
    ax.set_ylabel(axis_names[1])
    ax.grid(alpha=0.3)
    heading = "\n".join(t for t in (title or "latent means", note) if t)
    ax.set_title(heading, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    return path


def confusion_matrix(matrix, path: str | os.PathLike, title: str = "") -> Path:
    """A (classes, classes) count matrix as a heat map with its counts written in: row i is
    the class asked for, column j the class a classifier saw; each row is shaded by its own
    share, so a weak class shows whatever its count."""
    counts = np.asarray(matrix, dtype=np.int64)
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1]:
        raise ValueError(f"a confusion matrix is square, got shape {counts.shape}")
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    n = len(counts)
    fig = Figure(figsize=(1.0 + 0.5 * n, 0.8 + 0.5 * n))
    ax = fig.add_subplot()
    ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    for i in range(n):
        for j in range(n):
            if counts[i, j]:
                colour = "white" if shares[i, j] > 0.5 else "black"
                ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=7, color=colour)
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set_xlabel("class the classifier saw")
    ax.set_ylabel("class asked for")
    ax.set_title(title or "confusion matrix", fontsize=10)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    return path


def interpolation_strip(
    decode: Decode,
    z_start: np.ndarray,
    z_end: np.ndarray,
    path: str | os.PathLike,
    steps: int = 10,
    pad: int = 2,
    image_size: int | None = None,
) -> Path:
    """One row per (start, end) pair of codes: images decoded at `steps` evenly spaced points
    on the straight line between them, ends included. Starts and ends are (D,) or (k, D)."""
    start = np.atleast_2d(np.asarray(z_start, dtype=np.float32))
    end = np.atleast_2d(np.asarray(z_end, dtype=np.float32))
    if start.shape != end.shape or start.ndim != 2:
        raise ValueError(
            f"z_start and z_end must both be (D,) or (k, D); got {start.shape} and {end.shape}"
        )
    if steps < 2:
        raise ValueError(f"steps must be at least 2 to include both ends, got {steps}")
    t = np.linspace(0.0, 1.0, steps, dtype=np.float32)[None, :, None]
    codes = (start[:, None, :] * (1.0 - t) + end[:, None, :] * t).reshape(-1, start.shape[1])
    return save_png(grid(_decoded_tiles(decode, codes, image_size), ncol=steps, pad=pad), path)


def gif(frames: Sequence[np.ndarray], path: str | os.PathLike, duration_ms: int = 150) -> Path:
    """uint8 frames (H, W, C) as one looping GIF, written atomically."""
    if not frames:
        raise ValueError("a GIF needs at least one frame")
    images = [Image.fromarray(f[..., 0] if f.shape[-1] == 1 else f).convert("RGB") for f in frames]
    path = Path(path)
    with atomic_path(path) as tmp:
        images[0].save(
            tmp, format="GIF", save_all=True, append_images=images[1:], duration=duration_ms, loop=0
        )
    return path


def animated_gif(
    png_paths: Sequence[str | os.PathLike],
    path: str | os.PathLike,
    duration_ms: int = 300,
    hold_last_ms: int | None = None,
) -> Path:
    """The per-epoch sample PNGs as one looping GIF, written atomically.

    Frames of different sizes are placed top-left on a white canvas of the largest size.
    `hold_last_ms` lets the final epoch linger. Pillow folds a frame identical to the one
    before it into that frame's duration, so identical epochs play as one longer frame.
    """
    if not png_paths:
        raise ValueError("animated_gif needs at least one PNG")
    frames = []
    for png in png_paths:
        with Image.open(png) as im:
            frames.append(im.convert("RGB"))
    size = (max(f.width for f in frames), max(f.height for f in frames))
    canvases = []
    for frame in frames:
        if frame.size != size:
            canvas = Image.new("RGB", size, "white")
            canvas.paste(frame, (0, 0))
            frame = canvas
        canvases.append(frame)
    durations = [int(duration_ms)] * len(canvases)
    if hold_last_ms is not None:
        durations[-1] = int(hold_last_ms)
    path = Path(path)
    with atomic_path(path) as tmp:
        canvases[0].save(
            tmp, format="GIF", save_all=True, append_images=canvases[1:], duration=durations, loop=0
        )
    return path
