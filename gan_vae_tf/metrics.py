"""Evaluation metrics as pure functions of arrays: no models, no files."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np


def sigmoid(logits: np.ndarray) -> np.ndarray:
    logits = np.asarray(logits, dtype=np.float64)
    return np.exp(-np.logaddexp(0.0, -logits))


def mean_probability(logits: np.ndarray) -> float:
    """Mean sigmoid(D) over images: the discriminator's average belief that they are real."""
    return float(np.mean(sigmoid(logits)))


def mean_and_stderr(values: np.ndarray) -> tuple[float, float]:
    values = np.asarray(values, dtype=np.float64).ravel()
    stderr = float(values.std(ddof=1) / math.sqrt(len(values))) if len(values) > 1 else float("nan")
    return float(values.mean()), stderr


def bits_per_dim(nats_per_image: float, dims: int) -> float:
    """Convert a per-image log-likelihood bound in nats to bits per pixel-channel."""
    return float(-nats_per_image / (dims * math.log(2.0)))


def iwae_bound(log_weights: np.ndarray) -> np.ndarray:
    """Per-image importance-weighted bound log (1/k) sum_i w_i from (N, k) log-weights; with
    k = 1 it is the ELBO, and it tightens towards log p(x) as k grows (Burda et al. 2016)."""
    log_w = np.asarray(log_weights, dtype=np.float64)
    top = log_w.max(axis=1, keepdims=True)
    return top[:, 0] + np.log(np.mean(np.exp(log_w - top), axis=1))


def gaussian_stats(feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of (N, D) features, so the real set's fit can be computed once and cached."""
    feats = np.asarray(feats, dtype=np.float64)
    if feats.ndim != 2 or len(feats) < 2:
        raise ValueError(f"need an (N >= 2, D) array of features, got shape {feats.shape}")
    return feats.mean(axis=0), np.cov(feats, rowvar=False)


def _psd_sqrt(cov: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh((cov + cov.T) / 2.0)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def frechet_distance_from_stats(
    mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray
) -> float:
    """Squared 2-Wasserstein distance between two Gaussians.

    tr sqrt(cov1 cov2) equals tr sqrt(S cov2 S) with S = sqrt(cov1); the latter is symmetric, so a
    symmetric eigensolver gives real eigenvalues and rank-deficient covariances (N < D) stay finite.
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    cov1, cov2 = (
        np.atleast_2d(np.asarray(cov1, np.float64)),
        np.atleast_2d(np.asarray(cov2, np.float64)),
    )
    root1 = _psd_sqrt(cov1)
    middle = root1 @ cov2 @ root1
    eigenvalues = np.linalg.eigvalsh((middle + middle.T) / 2.0)
    trace_sqrt = np.sqrt(np.clip(eigenvalues, 0.0, None)).sum()
    distance = np.sum((mu1 - mu2) ** 2) + np.trace(cov1) + np.trace(cov2) - 2.0 * trace_sqrt
    return float(max(distance, 0.0))


def frechet_distance(feats_a: np.ndarray, feats_b: np.ndarray) -> float:
    """FID when the features come from Inception; any fixed embedding works the same way."""
    return frechet_distance_from_stats(*gaussian_stats(feats_a), *gaussian_stats(feats_b))


def _cubic_kernel_sum(x: np.ndarray, y: np.ndarray) -> float:
    """Sum over all pairs of (x.y/d + 1)^3, expanded into power sums of u = x.y so that besides the
    product only a square, a multiply and two sums touch the full matrix."""
    d = x.shape[1]
    u = x @ y.T
    sum_u = float(x.sum(axis=0) @ y.sum(axis=0))
    powers = np.square(u)
    sum_u2 = float(powers.sum())
    powers *= u
    sum_u3 = float(powers.sum())
    return sum_u3 / d**3 + 3.0 * sum_u2 / d**2 + 3.0 * sum_u / d + u.size


class KID(NamedTuple):
    """KID as a mean over random subsets; `std` is None when every subset was the same draw
    (both sets no larger than the subset size), because a spread of one value means nothing."""

    mean: float
    std: float | None
    subsets: int
    subset_size: int


def kernel_inception_distance(
    feats_a: np.ndarray,
    feats_b: np.ndarray,
    subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
) -> KID:
    """Unbiased MMD^2 with the cubic polynomial kernel, as (mean, std) over random subsets.

    Unlike FID it has no bias that depends on the sample size, so values from small sets are comparable.
    When both sets fit in one subset, every draw would be the same pair of sets: the MMD is
    computed once and reported with `subsets=1` and no std.
    """
    a, b = np.asarray(feats_a, np.float64), np.asarray(feats_b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"need two (N, D) arrays with the same D, got {a.shape} and {b.shape}")
    m = min(subset_size, len(a), len(b))
    if m < 2:
        raise ValueError("KID needs at least 2 samples in each set")
    if m == len(a) == len(b):
        subsets = 1
    rng = np.random.default_rng(seed)
    off_diagonal, d = m * (m - 1), a.shape[1]
    values = np.empty(subsets)
    for s in range(subsets):
        x = a[rng.choice(len(a), m, replace=False)]
        y = b[rng.choice(len(b), m, replace=False)]
        self_terms = np.sum((np.einsum("ij,ij->i", x, x) / d + 1.0) ** 3)
        self_terms += np.sum((np.einsum("ij,ij->i", y, y) / d + 1.0) ** 3)
        within = (_cubic_kernel_sum(x, x) + _cubic_kernel_sum(y, y) - self_terms) / off_diagonal
        values[s] = within - 2.0 * _cubic_kernel_sum(x, y) / m**2
    std = float(values.std()) if subsets > 1 else None
    return KID(float(values.mean()), std, subsets, m)


def _chunk_rows(n_cols: int, budget: int = 1 << 22) -> int:
    return max(1, budget // max(n_cols, 1))


def _distance_operands(feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows [x, |x|^2, 1] and [-2y, 1, |y|^2], whose product is |x - y|^2 in a single matmul."""
    sq = np.einsum("ij,ij->i", feats, feats)[:, None]
    ones = np.ones_like(sq)
    return np.hstack([feats, sq, ones]), np.hstack([-2.0 * feats, ones, sq])


def _knn_radii_sq(left: np.ndarray, right: np.ndarray, k: int) -> np.ndarray:
    """Squared distance from each point to its k-th nearest other point (the point itself is index 0)."""
    step = _chunk_rows(len(right))
    radii = np.empty(len(left))
    for start in range(0, len(left), step):
        d2 = left[start : start + step] @ right.T
        radii[start : start + step] = np.partition(d2, k, axis=1)[:, k]
    return np.maximum(radii, 0.0)


def precision_recall(
    real_feats: np.ndarray,
    fake_feats: np.ndarray,
    k: int = 3,
    max_samples: int | None = None,
    seed: int = 0,
) -> tuple[float, float]:
    """Improved precision and recall (Kynkaanniemi et al. 2019) from k-NN balls around each sample.

    Precision is the share of fakes inside the real manifold (fidelity); recall is the share of reals
    inside the fake manifold (coverage), which FID folds into one number. Distances are computed a
    block of rows at a time so memory stays at a few tens of MB for 10,000 x 10,000.
    """
    real, fake = np.asarray(real_feats, np.float64), np.asarray(fake_feats, np.float64)
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(
            f"need two (N, D) arrays with the same D, got {real.shape} and {fake.shape}"
        )
    if max_samples is not None:
        rng = np.random.default_rng(seed)
        if len(real) > max_samples:
            real = real[rng.choice(len(real), max_samples, replace=False)]
        if len(fake) > max_samples:
            fake = fake[rng.choice(len(fake), max_samples, replace=False)]
    if min(len(real), len(fake)) <= k:
        raise ValueError(f"each set needs more than k={k} samples")
    real_left, real_right = _distance_operands(real)
    fake_left, fake_right = _distance_operands(fake)
    real_radii = _knn_radii_sq(real_left, real_right, k)
    fake_radii = _knn_radii_sq(fake_left, fake_right, k)
    fake_in_real = np.zeros(len(fake), dtype=bool)
    real_in_fake = np.zeros(len(real), dtype=bool)
    step = _chunk_rows(len(real))
    for start in range(0, len(fake), step):
        d2 = fake_left[start : start + step] @ real_right.T
        fake_in_real[start : start + step] = (d2 <= real_radii[None, :]).any(axis=1)
        real_in_fake |= (d2 <= fake_radii[start : start + step, None]).any(axis=0)
    return float(fake_in_real.mean()), float(real_in_fake.mean())


def classifier_score(probs: np.ndarray) -> float:
    """exp(E_x KL(p(y|x) || p(y))): high when each sample is confidently one class and the classes
    are used evenly; ranges from 1 to the number of classes C."""
    probs = np.asarray(probs, np.float64)
    probs = probs / probs.sum(axis=1, keepdims=True)
    marginal = probs.mean(axis=0)
    log_p = np.log(np.where(probs > 0, probs, 1.0))
    log_marginal = np.log(np.where(marginal > 0, marginal, 1.0))
    kl = np.sum(probs * (log_p - log_marginal), axis=1)
    return float(np.exp(kl.mean()))


def class_histogram(probs: np.ndarray) -> np.ndarray:
    """How many samples are predicted as each class: shows which modes a generator drops."""
    probs = np.asarray(probs)
    return np.bincount(np.argmax(probs, axis=1), minlength=probs.shape[1])


_BINOMIAL_5 = np.array([1.0, 4.0, 6.0, 4.0, 1.0], np.float32) / 16.0


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, classes: int) -> np.ndarray:
    """(classes, classes) counts: row i, column j is how many images asked for (or labelled)
    i the classifier called j."""
    matrix = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(labels), np.asarray(predicted)), 1)
    return matrix


def class_accuracy(labels: np.ndarray, probs: np.ndarray) -> dict:
    """How often a classifier's prediction (argmax of `probs`) is the label: overall, per
    label (None for a label no image has), and its cross-entropy against the labels in nats
    (what TF-GAN's conditional MNIST example scores)."""
    labels = np.asarray(labels)
    probs = np.asarray(probs, dtype=np.float64)
    predicted = probs.argmax(axis=1)
    correct = predicted == labels
    per_class = [
        float(correct[labels == c].mean()) if np.any(labels == c) else None
        for c in range(probs.shape[1])
    ]
    picked = np.clip(probs[np.arange(len(labels)), labels], 1e-12, 1.0)
    return {
        "accuracy": float(correct.mean()),
        "per_class": per_class,
        "cross_entropy": float(-np.mean(np.log(picked))),
        "confusion": confusion_matrix(labels, predicted, probs.shape[1]).tolist(),
    }


def _along(x: np.ndarray, axis: int, index: slice) -> np.ndarray:
    return x[(slice(None),) * axis + (index,)]


def _halve(x: np.ndarray, axis: int) -> np.ndarray:
    """Blur along one axis and keep every other sample, computing only the samples that are kept.

    Edges are mirrored without repeating the border sample, as in cv2.pyrDown.
    """
    pad = [(0, 0)] * x.ndim
    pad[axis] = (2, 2)
    padded = np.pad(x, pad, mode="reflect")
    kept = (x.shape[axis] + 1) // 2
    out = _BINOMIAL_5[0] * _along(padded, axis, slice(0, 2 * kept - 1, 2))
    for i in range(1, 5):
        out += _BINOMIAL_5[i] * _along(padded, axis, slice(i, i + 2 * kept - 1, 2))
    return out


def _double(x: np.ndarray, axis: int, size: int) -> np.ndarray:
    """Upsample by two along one axis as cv2.pyrUp does (zero insertion then the 5-tap blur times 2),
    written as its two phases: even samples (1, 6, 1)/8, odd samples (1, 1)/2."""
    n = x.shape[axis]
    padded = np.concatenate(
        [_along(x, axis, slice(1, 2)), x, _along(x, axis, slice(n - 1, n))], axis=axis
    )
    left, centre, right = (_along(padded, axis, slice(i, i + n)) for i in range(3))
    even = (left + right + 6.0 * centre) * np.float32(0.125)
    odd = (centre + right) * np.float32(0.5)
    shape = list(x.shape)
    shape[axis] = 2 * n
    return _along(np.stack([even, odd], axis=axis + 1).reshape(shape), axis, slice(0, size))


def pyramid_levels(size: int, min_resolution: int = 16) -> int:
    """Laplacian levels for images of this side: halve while the next level is at least min_resolution."""
    levels = 1
    while size // 2 >= min_resolution:
        size //= 2
        levels += 1
    return levels


def laplacian_pyramid(images: np.ndarray, levels: int) -> Iterator[np.ndarray]:
    """Band-pass residuals from finest to coarsest, the last level being the low-pass image
    itself; yielded one at a time so only the current and next-coarser levels are in memory."""
    current = np.array(images, np.float32)
    for _ in range(1, levels):
        coarser = _halve(_halve(current, 1), 2)
        current -= _double(_double(coarser, 1, current.shape[1]), 2, current.shape[2])
        yield current
        current = coarser
    yield current


def _patch_descriptors(
    level: np.ndarray, patch_size: int, per_image: int, rng: np.random.Generator
) -> np.ndarray:
    n, h, w, c = level.shape
    half = patch_size // 2
    count = n * per_image
    offsets = np.arange(-half, half + 1)
    rows = rng.integers(half, h - half, size=count) + np.repeat(np.arange(n), per_image) * h
    cols = rng.integers(half, w - half, size=count)
    pixels = (rows[:, None, None] + offsets[:, None]) * w + (cols[:, None, None] + offsets)
    patches = np.take(level.reshape(-1, c), pixels.ravel(), axis=0).reshape(count, -1)
    values = patches.size // c
    mean = patches.sum(axis=0, dtype=np.float64).reshape(-1, c).sum(axis=0) / values
    power = (
        np.einsum("ij,ij->j", patches, patches, dtype=np.float64).reshape(-1, c).sum(axis=0)
        / values
    )
    std = np.sqrt(np.maximum(power - mean**2, 0.0))
    scale = 1.0 / np.where(std > 1e-6 * (1.0 + np.abs(mean)), std, 1.0)
    patches -= np.tile(mean, patch_size**2).astype(np.float32)
    patches *= np.tile(scale, patch_size**2).astype(np.float32)
    return patches


def _sliced_wasserstein(
    a: np.ndarray, b: np.ndarray, repeats: int, directions: int, rng: np.random.Generator
) -> float:
    results = []
    for _ in range(repeats):
        dirs = rng.standard_normal((a.shape[1], directions)).astype(np.float32)
        dirs /= np.linalg.norm(dirs, axis=0, keepdims=True)
        proj_a, proj_b = dirs.T @ a.T, dirs.T @ b.T
        proj_a.sort(axis=1)
        proj_b.sort(axis=1)
        proj_a -= proj_b
        results.append(np.abs(proj_a, out=proj_a).mean())
    return float(np.mean(results))


def sliced_wasserstein_distance(
    images_a: np.ndarray,
    images_b: np.ndarray,
    patch_size: int = 7,
    patches_per_image: int = 64,
    repeats: int = 4,
    directions: int = 128,
    min_resolution: int = 16,
    seed: int = 0,
) -> list[float]:
    """Progressive GAN's SWD (Karras et al. 2018) per Laplacian level, finest first, times 1e3.

    Each level compares the distribution of local patches at one spatial frequency, so it shows
    whether a generator gets fine texture or coarse layout wrong. As in the paper, each set's
    descriptors are normalized by their own per-channel mean and std, so the value measures the
    shape of the patch distribution rather than global brightness or contrast.
    """
    a, b = np.asarray(images_a), np.asarray(images_b)
    if a.ndim == 3:
        a, b = a[..., None], b[..., None]
    if a.ndim != 4 or a.shape[1:] != b.shape[1:]:
        raise ValueError(
            f"need two (N, H, W, C) image sets of the same size, got {a.shape} and {b.shape}"
        )
    if patch_size % 2 == 0 or min_resolution < patch_size or min(a.shape[1:3]) < patch_size:
        raise ValueError(
            f"need an odd patch_size no larger than min_resolution ({min_resolution}) "
            f"or the images ({a.shape[1]}x{a.shape[2]}), got {patch_size}"
        )
    rng = np.random.default_rng(seed)
    levels = pyramid_levels(min(a.shape[1:3]), min_resolution)
    results = []
    for level_a, level_b in zip(
        laplacian_pyramid(a, levels), laplacian_pyramid(b, levels), strict=True
    ):
        desc_a = _patch_descriptors(level_a, patch_size, patches_per_image, rng)
        desc_b = _patch_descriptors(level_b, patch_size, patches_per_image, rng)
        n = min(len(desc_a), len(desc_b))
        if len(desc_a) > n:
            desc_a = desc_a[rng.choice(len(desc_a), n, replace=False)]
        if len(desc_b) > n:
            desc_b = desc_b[rng.choice(len(desc_b), n, replace=False)]
        results.append(1e3 * _sliced_wasserstein(desc_a, desc_b, repeats, directions, rng))
    return results


def mean_sliced_wasserstein_distance(images_a: np.ndarray, images_b: np.ndarray, **kwargs) -> float:
    """One-number SWD: the average over pyramid levels, as reported in the Progressive GAN paper."""
    return float(np.mean(sliced_wasserstein_distance(images_a, images_b, **kwargs)))
