"""Use a trained run from Python: `gan_vae_tf.load(RUN_DIR)` returns a `TrainedModel`.

    import gan_vae_tf
    run = gan_vae_tf.load("experiments/runs/gan-mnist-20261204-120000")
    images = run.sample(16, seed=0)  # uint8, (16, 28, 28, 1)

Images go in and come out as uint8 arrays (N, H, W, C) at the dataset's resolution. Codes are
drawn with `tf.random.stateless_normal` from the seed, so the same seed gives the same images
in every process, and the same as the exported SavedModel's `sample` signature
(`python -m gan_vae_tf.export`).
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np
import tensorflow as tf

from gan_vae_tf import kinds, plots
from gan_vae_tf.config import Config
from gan_vae_tf.errors import UserError

BATCH = 500  # images per call to a network: all convolution, and little memory
Progress = Callable[[int, int], None]  # (images done, images in all)


def codes(n: int, size: int, seed: int) -> np.ndarray:
    """n float32 rows of `size` drawn from N(0, I) with a stateless seed."""
    return tf.random.stateless_normal((n, size), seed=(int(seed), 0)).numpy()


class TrainedModel:
    """A trained DCGAN or VAE with what its run's config says about it.

    `sample`, `decode` and `interpolate` serve both kinds (a DCGAN's code is its noise, a
    VAE's its latent z, decoded to the decoder's mean image); `encode` and `reconstruct` need
    a VAE's encoder. `generator` picks a DCGAN's generator: "ema" (its moving average, the
    default when kept) or "raw". A class-conditional model draws for `label`: one class, or a
    sequence of classes taken in turn; every class in turn when none is given.
    """

    def __init__(self, config: Config, model):
        self.config = config
        self.model = model
        self.kind = kinds.of(config)

    def __repr__(self) -> str:
        return f"TrainedModel({self.config.preset}, {self.kind.title}, images {self.image_shape})"

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self.config.image_shape

    @property
    def code_size(self) -> int:
        return self.kind.code_size(self.config)

    @property
    def classes(self) -> int:
        """How many classes the model draws for (0: unconditional)."""
        return self.kind.classes(self.config)

    def labels(self, n: int, label=None) -> np.ndarray | None:
        """The n labels a conditional model draws for (None for an unconditional one):
        `label` repeated, a sequence of labels taken in turn, or every class in turn."""
        if not self.classes:
            if label is not None:
                raise UserError(f"{self.config.preset} is not class-conditional: it takes no label")
            return None
        asked = np.arange(self.classes) if label is None else np.atleast_1d(np.asarray(label))
        if asked.size == 0 or not np.issubdtype(asked.dtype, np.integer):
            raise UserError(f"labels must be whole numbers, got {label!r}")
        if asked.min() < 0 or asked.max() >= self.classes:
            raise UserError(f"labels must be in 0-{self.classes - 1}, got {label!r}")
        return np.resize(asked.astype(np.int32), n)

    def codes(self, n: int, seed: int = 0) -> np.ndarray:
        """The n codes `sample(n, seed)` draws its images from: a DCGAN's noise, a VAE's
        draws z ~ p(z), both made from standard-normal noise drawn from `seed`."""
        noise = codes(n, self.kind.noise_size(self.config), seed)
        return np.asarray(self.kind.codes_from_noise(self.model, noise))

    def decode(
        self,
        z,
        generator: str | None = None,
        progress: Progress | None = None,
        label=None,
    ) -> np.ndarray:
        """uint8 images drawn from codes z (n, code_size)."""
        z = np.asarray(z, dtype=np.float32)
        if z.ndim != 2 or z.shape[1] != self.code_size:
            raise UserError(f"codes must be (n, {self.code_size}), got shape {z.shape}")
        labels = self.labels(len(z), label)
        out = np.empty((len(z), *self.image_shape), np.uint8)
        for start in range(0, len(z), BATCH):
            part = None if labels is None else labels[start : start + BATCH]
            images = self.kind.images_from_codes(
                self.model, z[start : start + BATCH], generator, part
            )
            out[start : start + BATCH] = plots.to_uint8(np.asarray(images))
            if progress is not None:
                progress(min(start + BATCH, len(z)), len(z))
        return out

    def sample(
        self,
        n: int,
        seed: int = 0,
        generator: str | None = None,
        progress: Progress | None = None,
        label=None,
    ) -> np.ndarray:
        """n uint8 samples drawn from `seed`: the same seed gives the same images."""
        if n <= 0:
            raise UserError(f"the number of images must be positive, got {n}")
        return self.decode(self.codes(n, seed), generator, progress, label)

    def interpolate(
        self,
        rows: int,
        steps: int,
        seed: int = 0,
        generator: str | None = None,
        progress: Progress | None = None,
        label=None,
    ) -> np.ndarray:
        """uint8 images (rows, steps, H, W, C): each row walks in `steps` even steps along the
        straight line between two random codes, both ends included; row i runs from code 2i
        to code 2i + 1 of `codes(2 * rows, seed)` (a conditional model's row i for the i-th of
        `labels(rows, label)`)."""
        if rows <= 0 or steps < 2:
            raise UserError(f"need at least one row and two steps, got {rows} and {steps}")
        ends = self.codes(2 * rows, seed)
        t = np.linspace(0.0, 1.0, steps, dtype=np.float32)[None, :, None]
        line = ends[0::2, None] * (1.0 - t) + ends[1::2, None] * t
        per_row = self.labels(rows, label)
        labels = None if per_row is None else np.repeat(per_row, steps)
        images = self.decode(line.reshape(rows * steps, -1), generator, progress, labels)
        return images.reshape(rows, steps, *self.image_shape)

    def _encoder(self) -> None:
        if not self.kind.has_encoder:
            raise UserError(
                f"a {self.kind.title} has no encoder: encode and reconstruct need a VAE"
            )

    def _checked(self, images) -> np.ndarray:
        """`images` if they are a non-empty uint8 (n, H, W, C) array of the run's shape."""
        self._encoder()
        images = np.asarray(images)
        shape = ", ".join(map(str, self.image_shape))
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != self.image_shape:
            raise UserError(
                f"images must be a uint8 array of shape (n, {shape}), got {images.dtype} "
                f"{images.shape}"
            )
        if not len(images):
            raise UserError("no images given")
        return images

    def _true_labels(self, n: int, label) -> np.ndarray | None:
        """A CVAE encodes images with their own labels, which only the caller knows."""
        if self.classes and label is None:
            raise UserError("a class-conditional VAE needs the images' labels: give label=")
        return self.labels(n, label)

    def encode(self, images, label=None) -> tuple[np.ndarray, np.ndarray]:
        """(means, log-variances) of q(z|x) for uint8 images, as float32 (n, latent); a CVAE's
        of q(z|x, y) for the images' labels."""
        images, pixels = self._checked(images), self.kind.pixels(self.config)
        labels = self._true_labels(len(images), label)
        parts = [
            self.model.encode(
                pixels.scale(images[i : i + BATCH]),
                None if labels is None else labels[i : i + BATCH],
            )
            for i in range(0, len(images), BATCH)
        ]
        return tuple(np.concatenate([np.asarray(p[j]) for p in parts]) for j in (0, 1))

    def reconstruct(
        self, images, progress: Progress | None = None, label=None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(the images as the model sees them, their reconstructions): both uint8; the first
        differs from the input where the model's data is prepared (binarized digits). A CVAE
        needs the images' labels."""
        images, pixels = self._checked(images), self.kind.pixels(self.config)
        labels = self._true_labels(len(images), label)
        seen, recon = [], []
        for i in range(0, len(images), BATCH):
            x = pixels.scale(images[i : i + BATCH])
            y = None if labels is None else labels[i : i + BATCH]
            seen.append(plots.to_uint8(np.asarray(x)))
            recon.append(plots.to_uint8(np.asarray(self.model.reconstruct(x, y))))
            if progress is not None:
                progress(min(i + BATCH, len(images)), len(images))
        return np.concatenate(seen), np.concatenate(recon)


def load(run_dir: str | os.PathLike) -> TrainedModel:
    """The finished run in `run_dir` (a UserError says what is missing). The folder may have
    been copied from another machine: nothing in it names an absolute path it needs."""
    return TrainedModel(*kinds.load_run(run_dir))
