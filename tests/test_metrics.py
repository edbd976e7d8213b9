"""Sample-quality metrics on inputs whose answer is known in closed form or by construction."""

from __future__ import annotations

import numpy as np
import pytest

from gan_vae_tf import metrics


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def test_fid_of_a_set_with_itself_is_zero(rng):
    feats = rng.standard_normal((500, 16)) @ rng.standard_normal((16, 16))
    assert metrics.frechet_distance(feats, feats) == pytest.approx(0.0, abs=1e-6)


def test_fid_of_unit_gaussians_is_the_squared_mean_shift(rng):
    shift = np.linspace(-1.0, 1.0, 8)
    a = rng.standard_normal((20000, 8))
    b = rng.standard_normal((20000, 8)) + shift
    assert metrics.frechet_distance(a, b) == pytest.approx(np.sum(shift**2), abs=0.1)


def test_fid_is_symmetric(rng):
    a = rng.standard_normal((300, 6))
    b = rng.standard_normal((300, 6)) * np.arange(1, 7) + 0.5
    assert metrics.frechet_distance(a, b) == pytest.approx(metrics.frechet_distance(b, a), rel=1e-9)


def test_fid_from_diagonal_stats_matches_closed_form(rng):
    mu1, mu2 = rng.standard_normal(5), rng.standard_normal(5)
    s1, s2 = rng.uniform(0.1, 3.0, 5), rng.uniform(0.1, 3.0, 5)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum(s1 + s2 - 2.0 * np.sqrt(s1 * s2))
    got = metrics.frechet_distance_from_stats(mu1, np.diag(s1), mu2, np.diag(s2))
    assert got == pytest.approx(expected, rel=1e-9)


def test_fid_from_full_covariances_matches_scipy_sqrtm(rng):
    linalg = pytest.importorskip("scipy.linalg")
    a, b = rng.standard_normal((6, 6)), rng.standard_normal((6, 6))
    cov1, cov2 = a @ a.T, b @ b.T + np.eye(6)
    mu1, mu2 = rng.standard_normal(6), rng.standard_normal(6)
    expected = (
        np.sum((mu1 - mu2) ** 2)
        + np.trace(cov1)
        + np.trace(cov2)
        - 2.0 * np.trace(linalg.sqrtm(cov1 @ cov2).real)
    )
    assert metrics.frechet_distance_from_stats(mu1, cov1, mu2, cov2) == pytest.approx(
        expected, rel=1e-8
    )


def test_fid_stays_finite_when_covariances_are_rank_deficient(rng):
    a, b = rng.standard_normal((10, 32)), rng.standard_normal((10, 32))
    assert np.isfinite(metrics.frechet_distance(a, b))


def test_kid_is_near_zero_for_one_distribution_and_positive_for_a_shift(rng):
    a, b = rng.standard_normal((400, 8)), rng.standard_normal((400, 8))
    same_mean, same_std, _, _ = metrics.kernel_inception_distance(a, b, subsets=20, subset_size=200)
    shifted_mean, shifted_std, _, _ = metrics.kernel_inception_distance(
        a, b + 1.0, subsets=20, subset_size=200
    )
    assert shifted_mean > 0.1 and abs(same_mean) < 0.02 * shifted_mean
    assert same_std >= 0.0 and shifted_std >= 0.0


def test_kid_over_one_full_subset_is_the_unbiased_mmd(rng):
    x, y = rng.standard_normal((30, 3)), rng.standard_normal((30, 3)) + 0.5

    def k(p, q):
        return (p @ q.T / 3 + 1.0) ** 3

    m = len(x)
    within = (k(x, x).sum() - np.trace(k(x, x)) + k(y, y).sum() - np.trace(k(y, y))) / (m * (m - 1))
    expected = within - 2.0 * k(x, y).mean()
    kid = metrics.kernel_inception_distance(x, y, subsets=1, subset_size=m)
    assert kid.mean == pytest.approx(expected, rel=1e-10)


def test_kid_has_no_spread_when_every_subset_would_be_the_whole_set(rng):
    """Both sets no larger than a subset: 100 'random' subsets are 100 copies of one value, and a
    std of 0 would read as 'exact'. One subset is reported, with no std."""
    x, y = rng.standard_normal((30, 3)), rng.standard_normal((30, 3)) + 0.5
    kid = metrics.kernel_inception_distance(x, y, subsets=100, subset_size=1000)
    assert kid.std is None and (kid.subsets, kid.subset_size) == (1, 30)
    spread = metrics.kernel_inception_distance(x, y, subsets=20, subset_size=20)
    assert spread.std > 0 and (spread.subsets, spread.subset_size) == (20, 20)


def test_kid_caps_subset_size_at_the_smaller_set(rng, monkeypatch):
    a, b = rng.standard_normal((30, 4)), rng.standard_normal((50, 4)) + 2.0
    asked_for_30 = metrics.kernel_inception_distance(a, b, subsets=3, subset_size=30)
    kernel, pairs = metrics._cubic_kernel_sum, []
    monkeypatch.setattr(
        metrics, "_cubic_kernel_sum", lambda x, y: pairs.append((len(x), len(y))) or kernel(x, y)
    )
    kid = metrics.kernel_inception_distance(a, b, subsets=3, subset_size=1000)
    assert kid.mean > 0 and np.isfinite(kid.std) and kid.subset_size == 30
    assert kid == asked_for_30  # the same subsets as asking for 30 directly
    assert pairs == [(30, 30)] * 9  # three kernel sums per subset, each over 30 x 30 rows


def test_precision_recall_of_identical_sets_is_one(rng):
    feats = rng.standard_normal((300, 5))
    assert metrics.precision_recall(feats, feats, k=3) == (1.0, 1.0)


def test_fakes_collapsed_inside_the_real_set_have_precision_but_no_recall(rng):
    real = rng.standard_normal((500, 4))
    fake = 0.01 * rng.standard_normal((500, 4))
    precision, recall = metrics.precision_recall(real, fake, k=3)
    assert precision > 0.95 and recall < 0.05


def test_fakes_far_from_the_real_set_have_neither(rng):
    real = rng.standard_normal((300, 4))
    fake = rng.standard_normal((300, 4)) + 20.0
    assert metrics.precision_recall(real, fake, k=3) == (0.0, 0.0)


def test_precision_recall_in_row_chunks_matches_a_brute_force_count(rng, monkeypatch):
    real, fake = rng.standard_normal((200, 3)), rng.standard_normal((150, 3)) * 1.5

    def dist(p, q):
        return np.linalg.norm(p[:, None] - q[None], axis=-1)

    real_radii = np.sort(dist(real, real), axis=1)[:, 3]
    fake_radii = np.sort(dist(fake, fake), axis=1)[:, 3]
    cross = dist(fake, real)
    expected = (
        (cross <= real_radii[None]).any(axis=1).mean(),
        (cross <= fake_radii[:, None]).any(axis=0).mean(),
    )
    monkeypatch.setattr(metrics, "_chunk_rows", lambda n_cols: 7)
    assert metrics.precision_recall(real, fake, k=3) == pytest.approx(expected)


def test_precision_recall_subsamples_to_max_samples(rng, monkeypatch):
    real, fake = rng.standard_normal((300, 3)), rng.standard_normal((200, 3)) * 1.5
    pick = np.random.default_rng(7)  # the draws precision_recall(seed=7) makes, in its order
    reference = metrics.precision_recall(
        real[pick.choice(300, 50, replace=False)], fake[pick.choice(200, 50, replace=False)]
    )
    whole = metrics.precision_recall(real, fake)
    radii, sizes = metrics._knn_radii_sq, []
    monkeypatch.setattr(
        metrics,
        "_knn_radii_sq",
        lambda left, right, k: sizes.append((len(left), len(right))) or radii(left, right, k),
    )
    precision, recall = metrics.precision_recall(real, fake, max_samples=50, seed=7)
    assert 0.5 < precision <= 1.0 and 0.5 < recall <= 1.0
    assert (precision, recall) == reference and sizes == [(50, 50), (50, 50)]
    sizes.clear()
    assert metrics.precision_recall(real, fake, max_samples=500) == whole  # smaller sets stay whole
    assert sizes == [(300, 300), (200, 200)]


def test_classifier_score_of_confident_evenly_spread_predictions_is_the_class_count():
    probs = np.eye(10)[np.arange(200) % 10]
    assert metrics.classifier_score(probs) == pytest.approx(10.0)


def test_classifier_score_is_one_for_a_single_mode_or_no_confidence():
    assert metrics.classifier_score(np.tile(np.eye(10)[3], (50, 1))) == pytest.approx(1.0)
    assert metrics.classifier_score(np.full((50, 10), 0.1)) == pytest.approx(1.0)


def test_classifier_score_stays_between_one_and_the_class_count(rng):
    logits = 3.0 * rng.standard_normal((100, 7))
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert 1.0 <= metrics.classifier_score(probs) <= 7.0


def test_class_histogram_counts_argmax_predictions_including_empty_classes():
    probs = np.array([[0.7, 0.2, 0.1, 0.0], [0.1, 0.8, 0.1, 0.0], [0.6, 0.3, 0.1, 0.0]])
    np.testing.assert_array_equal(metrics.class_histogram(probs), [2, 1, 0, 0])


def _blocky_images(rng, n: int, size: int = 64) -> np.ndarray:
    """Random 8x8 colour blocks upscaled with hard edges, so blurring visibly changes every level."""
    blocks = rng.integers(0, 256, size=(n, size // 8, size // 8, 3))
    return np.repeat(np.repeat(blocks, 8, axis=1), 8, axis=2).astype(np.uint8)


def test_pyramid_levels_go_down_to_16x16():
    assert metrics.pyramid_levels(64) == 3 and metrics.pyramid_levels(28) == 1
    levels = list(metrics.laplacian_pyramid(np.zeros((2, 64, 64, 3)), 3))
    assert [lvl.shape[1:3] for lvl in levels] == [(64, 64), (32, 32), (16, 16)]


def test_laplacian_pyramid_of_a_constant_image_has_zero_residuals():
    levels = list(metrics.laplacian_pyramid(np.full((1, 32, 32, 1), 5.0), 2))
    np.testing.assert_allclose(levels[0], 0.0, atol=1e-5)
    np.testing.assert_allclose(levels[1], 5.0, atol=1e-5)


def _box_blur(images: np.ndarray) -> np.ndarray:
    """3x3 mean filter with wrap-around, independent of the metric's own pyramid filter."""
    images = images.astype(np.float32)
    return (
        sum(np.roll(images, (dy, dx), axis=(1, 2)) for dy in (-1, 0, 1) for dx in (-1, 0, 1)) / 9.0
    )


def test_swd_of_a_set_with_itself_is_small_next_to_blurred_or_noisy_copies(rng):
    images = _blocky_images(rng, 16)
    kwargs = dict(patches_per_image=256, repeats=2, directions=64)
    itself = metrics.sliced_wasserstein_distance(images, images, **kwargs)
    blurred = metrics.sliced_wasserstein_distance(images, _box_blur(_box_blur(images)), **kwargs)
    noisy = metrics.sliced_wasserstein_distance(
        images, images + images.std() * rng.standard_normal(images.shape), **kwargs
    )
    assert len(itself) == len(blurred) == len(noisy) == 3
    assert all(v >= 0 for v in itself + blurred + noisy)
    assert 2.0 * itself[0] < blurred[0] and 2.0 * itself[0] < noisy[0]
    mean = metrics.mean_sliced_wasserstein_distance(images, images, **kwargs)
    assert mean == pytest.approx(np.mean(itself))


def test_swd_ignores_global_contrast_and_brightness_because_each_set_is_normalized(rng):
    images = _blocky_images(rng, 4).astype(np.float32)
    kwargs = dict(patches_per_image=16, repeats=1, directions=32)
    itself = metrics.sliced_wasserstein_distance(images, images, **kwargs)
    dimmed = metrics.sliced_wasserstein_distance(images, 0.5 * images + 10.0, **kwargs)
    np.testing.assert_allclose(dimmed, itself, rtol=1e-3)


def test_swd_accepts_grayscale_and_sets_of_different_sizes(rng):
    a = rng.random((6, 28, 28))
    b = rng.random((9, 28, 28))
    values = metrics.sliced_wasserstein_distance(
        a, b, patches_per_image=8, repeats=1, directions=16
    )
    assert len(values) == 1 and values[0] >= 0


def test_swd_rejects_patches_that_do_not_fit(rng):
    with pytest.raises(ValueError, match="patch_size"):
        metrics.sliced_wasserstein_distance(rng.random((2, 6, 6)), rng.random((2, 6, 6)))
    with pytest.raises(ValueError, match="patch_size"):
        metrics.sliced_wasserstein_distance(
            rng.random((2, 32, 32)), rng.random((2, 32, 32)), patch_size=6
        )


def test_class_accuracy_finds_a_planted_confusion():
    """Digits asked for as 3 come out as 5 half the time; everything else is right."""
    labels = np.repeat(np.arange(10), 20)
    predicted = labels.copy()
    threes = np.flatnonzero(labels == 3)
    predicted[threes[:10]] = 5
    probs = np.full((200, 10), 0.01)
    probs[np.arange(200), predicted] = 0.91
    result = metrics.class_accuracy(labels, probs)
    assert result["accuracy"] == pytest.approx(190 / 200)
    assert result["per_class"][3] == pytest.approx(0.5)
    assert all(a == 1.0 for c, a in enumerate(result["per_class"]) if c != 3)
    confusion = np.array(result["confusion"])
    assert confusion[3, 5] == 10 and confusion[3, 3] == 10 and confusion.sum() == 200
    assert np.trace(confusion) == 190
    expected = -(190 * np.log(0.91) + 10 * np.log(0.01)) / 200
    assert result["cross_entropy"] == pytest.approx(expected)


def test_a_class_no_image_asks_for_has_no_accuracy():
    probs = np.eye(3)[[0, 0, 1]]
    assert metrics.class_accuracy(np.array([0, 0, 1]), probs)["per_class"] == [1.0, 1.0, None]
