"""What `evaluate` measures of a trained model: functions that take the model and held-out
uint8 images and return plain numbers. The metric formulas themselves are in `metrics` and
`quality`; which of these functions a kind of model gets is `kinds`' business."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from gan_vae_tf import classifier, data, metrics, plots, quality
from gan_vae_tf.errors import UserError

BATCH = 500  # images per call: large enough to be all convolution, small enough for any RAM


@dataclass(frozen=True)
class Request:
    """What to measure: how many held-out images (`num`), samples for sample quality
    (`quality_num`, 0 to skip), importance samples and images of the VAE's IWAE bound, an
    optional InceptionV3 weights file, and whether a DCGAN is judged by its raw generator
    instead of its moving average."""

    num: int = 10000
    quality_num: int = 5000
    iwae_k: int = 1000
    iwae_images: int = 500
    inception_weights: str | None = None
    raw_generator: bool = False

    def __post_init__(self):
        if self.num <= 0:
            raise UserError(f"the number of test images must be positive, got {self.num}")
        if self.quality_num < 0 or self.iwae_k < 0:
            raise UserError("the numbers of samples and of importance samples must be >= 0")
        if self.iwae_k and self.iwae_images <= 0:
            raise UserError(f"an IWAE bound needs test images, got {self.iwae_images}")


def _batches(array: np.ndarray | None, size: int = BATCH) -> Iterator[np.ndarray | None]:
    """Slices of `size` rows; for None (no labels) as many Nones as `size`-row slices would
    need: callers zip them with the images' slices."""
    if array is None:
        while True:
            yield None
    for i in range(0, len(array), size):
        yield array[i : i + size]


def balanced_labels(n: int, classes: int) -> np.ndarray:
    """n labels asked of a conditional model: every class in turn, as evenly as n allows."""
    return (np.arange(n) % classes).astype(np.int32)


def discriminator_probabilities(
    model,
    real: np.ndarray,
    pixels: data.PixelRange,
    generator: str | None = None,
    labels: np.ndarray | None = None,
) -> dict:
    """Mean sigmoid(D) on the real images and on as many samples of `generator` (for a
    conditional model: D told the real images' labels, and the fakes drawn for them)."""
    net = model.generator_for(generator)
    discriminate = tf.function(lambda x, y: model.discriminate(x, y))
    judge_fakes = tf.function(
        lambda n, y: model.discriminate(model.generate(model.sample_noise(n), y, False, net), y)
    )
    parts = list(zip(_batches(real), _batches(labels), strict=False))
    real_logits = np.concatenate([discriminate(pixels.scale(x), y).numpy() for x, y in parts])
    fake_logits = np.concatenate([judge_fakes(len(x), y).numpy() for x, y in parts])
    return {
        "images": int(len(real)),
        "d_fake": metrics.mean_probability(fake_logits),
        "d_real": metrics.mean_probability(real_logits),
    }


def elbo(
    model, images: np.ndarray, pixels: data.PixelRange, labels: np.ndarray | None = None
) -> dict:
    """The single-sample ELBO of every image, its terms, and the reconstruction error (a
    CVAE's conditioned on the images' own labels)."""

    @tf.function
    def step(x, y):
        elbo, log_px_z, kl = model.elbo_terms(x, y)
        sq_err = tf.reduce_mean(tf.square(model.reconstruct(x, y) - x), axis=[1, 2, 3])
        return elbo, log_px_z, kl, sq_err

    parts = [
        step(pixels.scale(x), y) for x, y in zip(_batches(images), _batches(labels), strict=False)
    ]
    per_image, log_px_z, kl, sq_err = (
        np.concatenate([p[i].numpy() for p in parts]) for i in range(4)
    )
    elbo_mean, elbo_se = metrics.mean_and_stderr(per_image)
    likelihood = model.options.likelihood
    dims = int(np.prod(images.shape[1:]))
    return {
        "images": int(len(images)),
        "likelihood": likelihood,
        "elbo_nats": elbo_mean,
        "elbo_stderr": elbo_se,
        # A density on [0, 1] pixels is read on the 8-bit scale [0, 256): + log2(256) per dim.
        "elbo_bits_per_dim": metrics.bits_per_dim(elbo_mean, dims)
        + (8.0 if likelihood == "gaussian" else 0.0),
        "reconstruction_nll_nats": float(-log_px_z.mean()),
        "kl_nats": float(kl.mean()),
        "reconstruction_mse": float(sq_err.mean()),
    }


def iwae(
    model, images: np.ndarray, pixels: data.PixelRange, k: int, labels: np.ndarray | None = None
) -> dict:
    """The importance-weighted bound (k samples) beside the single-sample ELBO, same images.
    Eight images per call: k copies of each go through the decoder at once."""
    weights = tf.function(lambda x, y: model.log_importance_weights(x, k, y))
    bounds, elbos = [], []
    for chunk, chunk_labels in zip(_batches(images, 8), _batches(labels, 8), strict=False):
        log_w = weights(pixels.scale(chunk), chunk_labels).numpy()
        bounds.append(metrics.iwae_bound(log_w))
        elbos.append(log_w.mean(axis=1))
    bound, bound_se = metrics.mean_and_stderr(np.concatenate(bounds))
    elbo_mean, _ = metrics.mean_and_stderr(np.concatenate(elbos))
    return {
        "k": k,
        "images": int(len(images)),
        "iwae_nats": bound,
        "iwae_stderr": bound_se,
        "elbo_same_images_nats": elbo_mean,
    }


def samples(model, n: int, labels: np.ndarray | None = None, **options) -> np.ndarray:
    """n uint8 samples of `model.sample(batch, **options)` (images in [0, 1]); a conditional
    model's drawn for `labels`."""
    # Eager: batches of hundreds of images are all convolution, and a tf.function made here
    # would be traced anew on every call.
    extra = {} if labels is None else {"labels": labels}
    chunks = []
    for i in range(0, n, BATCH):
        asked = {k: v[i : i + BATCH] for k, v in extra.items()}
        chunks.append(
            keras.ops.convert_to_numpy(model.sample(min(BATCH, n - i), **options, **asked))
        )
    return plots.to_uint8(np.concatenate(chunks))


def sample_quality(
    cfg,
    dataset: data.Splits,
    fake: np.ndarray,
    inception_weights=None,
    requested: np.ndarray | None = None,
) -> dict:
    """Sample-quality metrics of uint8 `fake` against held-out images, beside the real-data
    floor: in the digit classifier's features for labelled digits, else patch SWD; in
    InceptionV3 features too when a weights file is given. With `requested`, the labels a
    conditional model drew `fake` for: how often the classifier sees the digit asked for, beside
    how often it sees the true digit of held-out images."""
    real, reference = quality.real_sets(dataset.test, len(fake))
    if cfg.data.dataset in quality.CLASSIFIER_DATASETS and dataset.train_labels is not None:
        clf, accuracy = classifier.train_or_load(
            cfg.data.dataset, dataset.train, dataset.train_labels, dataset.test, dataset.test_labels
        )
        result = quality.classifier_quality(clf, real, reference, fake)
        result["classifier_test_accuracy"] = accuracy
        if requested is not None:
            idx = data.sample_indices(len(dataset.test), len(fake))
            held_out = dataset.test if idx is None else dataset.test[idx]
            truth = dataset.test_labels if idx is None else dataset.test_labels[idx]
            result["class_fidelity"] = {
                "model": metrics.class_accuracy(requested, classifier.predict(clf, fake)),
                "real_floor": metrics.class_accuracy(truth, classifier.predict(clf, held_out)),
            }
    else:
        result = quality.patch_quality(real, reference, fake)
    if inception_weights:
        result["inception"] = quality.inception_quality(inception_weights, real, reference, fake)
    else:
        result["inception"] = (
            "skipped: pass --inception-weights PATH (ImageNet InceptionV3, no top)"
        )
    return result
