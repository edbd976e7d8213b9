"""A small CNN digit classifier: the offline feature space for MNIST-like sample quality.

Trained once per dataset on the real training images and cached, then used two ways:
its 128-wide penultimate layer gives features for FID/KID/precision-recall, its softmax gives
the classifier score (the MNIST analogue of the Inception score) and the class histogram.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import keras
import numpy as np
from keras import layers

from gan_vae_tf import rundir

log = logging.getLogger(__name__)

FEATURE_LAYER = "features"
_VERSION = 1


def network(image_shape: tuple[int, int, int], classes: int = 10) -> keras.Model:
    """The untrained classifier (named like the `networks` builders: by what it builds)."""
    inputs = keras.Input(image_shape)
    x = layers.Conv2D(32, 3, activation="relu")(inputs)
    x = layers.Conv2D(64, 3, activation="relu")(x)
    x = layers.MaxPooling2D()(x)
    x = layers.Dropout(0.25)(x)
    x = layers.Conv2D(64, 3, activation="relu")(x)
    x = layers.MaxPooling2D()(x)
    x = layers.Flatten()(x)
    x = layers.Dense(128, activation="relu", name=FEATURE_LAYER)(x)
    x = layers.Dropout(0.4)(x)
    outputs = layers.Dense(classes, activation="softmax", dtype="float32")(x)
    return keras.Model(inputs, outputs, name="digit_classifier")


def _cache_path(key: str, cache_dir: str | os.PathLike | None) -> Path:
    return rundir.cache_dir(cache_dir) / "classifiers" / f"{key}.keras"


def fingerprint(train_images: np.ndarray, train_labels: np.ndarray) -> str:
    digest = hashlib.sha256()
    digest.update(f"v{_VERSION}:{train_images.shape}".encode())
    digest.update(np.ascontiguousarray(train_images[::97]).tobytes())
    digest.update(np.ascontiguousarray(train_labels).tobytes())
    return digest.hexdigest()[:20]


def train_or_load(
    name: str,
    train_images: np.ndarray,
    train_labels: np.ndarray,
    test_images: np.ndarray,
    test_labels: np.ndarray,
    epochs: int = 4,
    cache_dir: str | os.PathLike | None = None,
    seed: int = 0,
) -> tuple[keras.Model, float]:
    """The cached classifier for this training set (trained on first use) and its test accuracy."""
    path = _cache_path(f"{name}-{fingerprint(train_images, train_labels)}", cache_dir)
    if path.is_file():
        model = keras.saving.load_model(path)
    else:
        log.info("training the %s feature classifier once (cached at %s)", name, path)
        keras.utils.set_random_seed(seed)
        model = network(train_images.shape[1:], int(train_labels.max()) + 1)
        model.compile(
            optimizer=keras.optimizers.Adam(1e-3),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        model.fit(
            train_images.astype("float32") / 255.0,
            train_labels,
            batch_size=128,
            epochs=epochs,
            verbose=0,
            shuffle=True,
        )
        with rundir.atomic_path(path) as tmp:
            model.save(tmp)
    probs = predict(model, test_images)
    accuracy = float(np.mean(probs.argmax(axis=1) == test_labels))
    return model, accuracy


def predict(model: keras.Model, images: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """Class probabilities for uint8 images or floats in [0, 1]."""
    return model.predict(_as_unit(images), batch_size=batch_size, verbose=0)


def features(
    model: keras.Model, images: np.ndarray, batch_size: int = 1000
) -> tuple[np.ndarray, np.ndarray]:
    """(penultimate features, class probabilities) in one pass."""
    both = keras.Model(model.input, [model.get_layer(FEATURE_LAYER).output, model.output])
    # Called eagerly: `predict` would compile a new function for every new `both`, i.e. on
    # every call, which repeated scoring (bench-quality) pays each time.
    x = _as_unit(images)
    parts = [both(x[i : i + batch_size], training=False) for i in range(0, len(x), batch_size)]
    feats = np.concatenate([keras.ops.convert_to_numpy(f) for f, _ in parts])
    probs = np.concatenate([keras.ops.convert_to_numpy(p) for _, p in parts])
    return feats.astype(np.float64), probs


def _as_unit(images: np.ndarray) -> np.ndarray:
    return (
        images.astype("float32") / 255.0 if images.dtype == np.uint8 else images.astype("float32")
    )
