"""One record per model kind: what differs between a DCGAN run and a VAE run outside the models.

A run's config names its kind (`model: "gan" | "vae"`); `of(cfg)` returns the record, and the
rest of the package asks it instead of comparing that name: how to build the model and its
optimizers from the config, the pixel range its networks see, the fixed inputs and drawing of
the per-epoch sample grid, what `evaluate` measures, and what the report says of its latent
space. This is the only module that knows which kinds exist.
"""

from __future__ import annotations

import logging
import os
from typing import ClassVar

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from gan_vae_tf import data, evaluation, networks, plots, rundir
from gan_vae_tf.config import Config
from gan_vae_tf.errors import UserError
from gan_vae_tf.models import DCGAN, VAE, MultiOptimizerModel, optimizers

log = logging.getLogger(__name__)


class Kind:
    """What a kind of model needs from the rest of the package. Subclasses fill it in."""

    #: The config's `model` value.
    name: ClassVar[str]
    #: The model's name in the report's table.
    title: ClassVar[str]
    #: The range the networks see pixels in (their images' range, before binarizing).
    value_range: ClassVar[tuple[float, float]]
    #: Whether training also reports test-set metrics each epoch (the VAE's test ELBO).
    validates: ClassVar[bool] = False
    #: Whether the model has an encoder q(z|x): the report then draws latent-space figures.
    has_encoder: ClassVar[bool] = False

    def pixels(self, cfg: Config) -> data.PixelRange:
        return data.PixelRange(*self.value_range, binarize=cfg.data.binarize)

    def options(self, cfg: Config):
        """The config section the model reads (`GANConfig`, `VAEConfig`)."""
        return getattr(cfg, self.name)

    def classes(self, cfg: Config) -> int:
        """How many labels a class-conditional model draws for (0: unconditional)."""
        return cfg.classes

    def labels(self, cfg: Config, labels: np.ndarray | None, split: str) -> np.ndarray | None:
        """The labels a conditional model trains or is measured on (None for an unconditional
        one), or a UserError when the data came without them."""
        if not self.classes(cfg):
            return None
        if labels is None:
            raise UserError(f"a class-conditional model needs the {split} images' labels")
        return labels

    def build(self, cfg: Config, policy: str = "float32") -> MultiOptimizerModel:
        """The uncompiled model a config describes, layers under the dtype `policy`."""
        raise NotImplementedError

    def optimizers(self, cfg: Config, total_steps: int | None) -> dict:
        """The optimizers `compile()` takes, by name, for a run of `total_steps`."""
        raise NotImplementedError

    def grid_inputs(self, cfg: Config, dataset: data.Splits, rng) -> dict[str, np.ndarray]:
        """The inputs of the per-epoch sample grid, drawn once per run (and checkpointed), so
        successive epochs show the same samples improving."""
        raise NotImplementedError

    def draw_grid(self, model, inputs: dict[str, np.ndarray]) -> np.ndarray:
        """The uint8 sample grid of `grid_inputs`' inputs."""
        raise NotImplementedError

    def test_metrics(self, model, cfg: Config, dataset, request: evaluation.Request) -> dict:
        """What `evaluate` measures of this kind on held-out images, sample quality aside."""
        raise NotImplementedError

    def samples(
        self, model, n: int, request: evaluation.Request, labels: np.ndarray | None = None
    ) -> np.ndarray:
        """n uint8 samples, as `evaluate` scores them (a conditional model's for `labels`)."""
        return evaluation.samples(model, n, labels)

    def held_out(self, cfg: Config, dataset, n: int) -> tuple[np.ndarray, np.ndarray | None]:
        """A seeded random n of the held-out images, with their labels when the model is
        conditioned on them."""
        idx = data.sample_indices(len(dataset.test), n)
        images = dataset.test if idx is None else dataset.test[idx]
        labels = self.labels(cfg, dataset.test_labels, "test")
        return images, (labels if labels is None or idx is None else labels[idx])

    def latent_space(self, cfg: Config) -> str:
        """The report's words for the model's latent space."""
        raise NotImplementedError

    def code_size(self, cfg: Config) -> int:
        """The size of the codes the model draws images from (noise, or a latent z)."""
        raise NotImplementedError

    def noise_size(self, cfg: Config) -> int:
        """The size of the standard-normal noise a sample's code is made from."""
        return self.code_size(cfg)

    def codes_from_noise(self, model, noise):
        """The codes of samples, from standard-normal noise (n, noise_size): a tensor op."""
        return noise

    def code_layers(self, model) -> list[keras.layers.Layer]:
        """The layers `codes_from_noise` needs besides the image network (an export keeps
        them)."""
        return []

    def image_network(self, model, generator: str | None = None) -> keras.Model:
        """The network that draws images from codes: a DCGAN's generator (`generator`: "ema",
        "raw", or None for the model's default), a VAE's decoder."""
        raise NotImplementedError

    def images_from_codes(self, model, codes, generator: str | None = None, labels=None):
        """float32 images in [0, 1] drawn from `codes` (a tensor op, so that an exported
        graph can trace it): a generator's output, or a decoder's mean; a conditional model's
        for `labels`, one per code."""
        raise NotImplementedError


def _grid_codes(cfg: Config, rng, dim: int, classes: int = 0) -> dict[str, np.ndarray]:
    """The fixed normal codes of the per-epoch PNG: `train.sample_grid` squared of them; for a
    conditional model, one row per class of `train.sample_grid` codes, the same in every row,
    so a column shows one style drawn as every class ({"codes", "labels"})."""
    side = cfg.train.sample_grid
    if not classes:
        return {"codes": rng.standard_normal((side**2, dim)).astype("float32")}
    row = rng.standard_normal((side, dim)).astype("float32")
    labels = np.repeat(np.arange(classes, dtype=np.int32), side)
    return {"codes": np.tile(row, (classes, 1)), "labels": labels}


def _grid(images: np.ndarray, inputs: dict[str, np.ndarray], side: int | None) -> np.ndarray:
    """A square grid, or one row of `side` images per class when the inputs have labels."""
    return plots.grid(images, side if "labels" in inputs else None)


class GANKind(Kind):
    name = "gan"
    title = "DCGAN"
    value_range = (-1.0, 1.0)  # the generator's tanh

    def build(self, cfg: Config, policy: str = "float32") -> DCGAN:
        nets = networks.generator(cfg, policy), networks.discriminator(cfg, policy)
        return DCGAN(*nets, options=cfg.gan, seed=cfg.train.seed, name="dcgan")

    def optimizers(self, cfg: Config, total_steps: int | None) -> dict:
        """Adam for both networks; the discriminator's learning rate may differ (TTUR)."""
        return {
            "g_optimizer": optimizers.run_adam(cfg.train, total_steps),
            "d_optimizer": optimizers.run_adam(cfg.train, total_steps, cfg.gan.disc_learning_rate),
        }

    def grid_inputs(self, cfg: Config, dataset: data.Splits, rng) -> dict[str, np.ndarray]:
        grid = _grid_codes(cfg, rng, cfg.gan.noise_dim, self.classes(cfg))
        return {"noise": grid.pop("codes"), **grid}

    def draw_grid(self, model: DCGAN, inputs: dict[str, np.ndarray]) -> np.ndarray:
        labels = inputs.get("labels")
        images = model.generate(inputs["noise"], labels, False, model.generator_for())
        side = len(inputs["noise"]) // model.options.classes if labels is not None else None
        return _grid(plots.to_uint8(ops.convert_to_numpy(images), self.value_range), inputs, side)

    def _generator(self, model: DCGAN, request: evaluation.Request) -> str:
        return "raw" if request.raw_generator else model.default_generator

    def test_metrics(self, model: DCGAN, cfg: Config, dataset, request) -> dict:
        real, labels = self.held_out(cfg, dataset, request.num)
        which = self._generator(model, request)
        probabilities = evaluation.discriminator_probabilities(
            model, real, self.pixels(cfg), which, labels
        )
        return {**probabilities, "generator": which}

    def samples(self, model: DCGAN, n: int, request, labels=None) -> np.ndarray:
        return evaluation.samples(model, n, labels, generator=self._generator(model, request))

    def latent_space(self, cfg: Config) -> str:
        return f"{cfg.gan.noise_dim}-d noise; no encoder, no inference"

    def code_size(self, cfg: Config) -> int:
        return cfg.gan.noise_dim

    def image_network(self, model: DCGAN, generator: str | None = None) -> keras.Model:
        return model.generator_for(generator)

    def images_from_codes(self, model: DCGAN, codes, generator: str | None = None, labels=None):
        images = model.generate(codes, labels, False, self.image_network(model, generator))
        return (ops.cast(images, "float32") + 1.0) / 2.0


class VAEKind(Kind):
    name = "vae"
    title = "VAE"
    value_range = (0.0, 1.0)  # the decoder's Bernoulli means or Gaussian pixel means
    validates = True
    has_encoder = True

    def build(self, cfg: Config, policy: str = "float32") -> VAE:
        nets = networks.encoder(cfg, policy), networks.decoder(cfg, policy)
        return VAE(*nets, options=cfg.vae, seed=cfg.train.seed, name="vae")

    def optimizers(self, cfg: Config, total_steps: int | None) -> dict:
        return {"vae_optimizer": optimizers.run_adam(cfg.train, total_steps)}

    def grid_inputs(self, cfg: Config, dataset: data.Splits, rng) -> dict[str, np.ndarray]:
        """The noise of prior draws ("z": z itself under N(0, I), the name checkpoints keep),
        and eight held-out images to show beside their reconstructions."""
        grid = _grid_codes(cfg, rng, self.noise_size(cfg), self.classes(cfg))
        inputs = {"z": grid.pop("codes"), **grid}
        idx = data.sample_indices(len(dataset.test), 8)
        idx = np.arange(len(dataset.test)) if idx is None else idx
        inputs["batch"] = self.pixels(cfg).scale(dataset.test[idx]).numpy()
        test_labels = self.labels(cfg, dataset.test_labels, "test")
        if test_labels is not None:
            inputs["batch_labels"] = test_labels[idx].astype(np.int32)
        return inputs

    def draw_grid(self, model: VAE, inputs: dict[str, np.ndarray]) -> np.ndarray:
        """Prior samples (decoded means) beside test images over their reconstructions."""
        labels = inputs.get("labels")
        z = model.prior_codes(inputs["z"])
        samples = ops.convert_to_numpy(ops.sigmoid(model.decode(z, labels)))
        recon = ops.convert_to_numpy(model.reconstruct(inputs["batch"], inputs.get("batch_labels")))
        side = len(inputs["z"]) // model.options.classes if labels is not None else None
        return plots.side_by_side(
            _grid(plots.to_uint8(samples), inputs, side),
            plots.reconstruction_grid(inputs["batch"], recon),
        )

    def test_metrics(self, model: VAE, cfg: Config, dataset, request) -> dict:
        pixels = self.pixels(cfg)
        images, labels = self.held_out(cfg, dataset, request.num)
        result = evaluation.elbo(model, images, pixels, labels)
        if request.iwae_k > 0:
            images, labels = self.held_out(cfg, dataset, request.iwae_images)
            result["iwae"] = evaluation.iwae(model, images, pixels, request.iwae_k, labels)
        return result

    def latent_space(self, cfg: Config) -> str:
        return f"{cfg.vae.latent_dim}-d Gaussian with an encoder q(z|x)"

    def code_size(self, cfg: Config) -> int:
        return cfg.vae.latent_dim

    def noise_size(self, cfg: Config) -> int:
        """z's size, and a column more that picks a mixture prior's component."""
        return cfg.vae.latent_dim + (1 if cfg.vae.prior_components else 0)

    def codes_from_noise(self, model: VAE, noise):
        return model.prior_codes(noise)

    def code_layers(self, model: VAE) -> list[keras.layers.Layer]:
        return [] if model.prior is None else [model.prior]

    def image_network(self, model: VAE, generator: str | None = None) -> keras.Model:
        if generator is not None:
            raise UserError(f"a VAE draws with its decoder: there is no {generator!r} generator")
        return model.decoder

    def images_from_codes(self, model: VAE, codes, generator: str | None = None, labels=None):
        self.image_network(model, generator)
        return ops.sigmoid(model.decode(codes, labels))


KINDS: dict[str, Kind] = {kind.name: kind for kind in (GANKind(), VAEKind())}


def of(cfg: Config) -> Kind:
    """The record of the kind of model `cfg` describes."""
    if cfg.model not in KINDS:
        raise UserError(f"model must be one of {', '.join(KINDS)}, got {cfg.model!r}")
    return KINDS[cfg.model]


def steps_per_execution(cfg: Config) -> int:
    """The config's train steps per compiled call, or 1 under any tf.distribute strategy:
    Keras 3 runs each step of a multi-step call inside a `tf.cond`, where the optimizer's
    cross-replica `merge_call` fails ("You must feed a value for placeholder tensor",
    keras-team/keras#19246; a one-device MirroredStrategy merges too). The steps compute the
    same either way; only speed differs, and the log says so."""
    steps = cfg.train.steps_per_execution
    if steps > 1 and tf.distribute.has_strategy():
        strategy = tf.distribute.get_strategy()
        log.info(
            "steps per execution: 1 instead of %d under %s over %d replicas",
            steps,
            type(strategy).__name__,
            strategy.num_replicas_in_sync,
        )
        return 1
    return steps


def build(cfg: Config, policy: str = "float32", steps_per_epoch: int | None = None):
    """The compiled model a config describes, with layers under the given dtype policy.
    `steps_per_epoch` (else the config's) sizes a learning-rate decay over the whole run."""
    kind = of(cfg)
    model = kind.build(cfg, policy)
    per_epoch = steps_per_epoch or cfg.train.steps_per_epoch
    total = cfg.train.epochs * per_epoch if per_epoch else None
    model.compile(
        **kind.optimizers(cfg, total),
        loss_scale=policy == "mixed_float16",
        steps_per_execution=steps_per_execution(cfg),
    )
    return model


def run_config(run_dir: str | os.PathLike) -> Config:
    """The config of a finished run, or a UserError saying what is missing (no TensorFlow
    work: commands check this before anything slow)."""
    run = rundir.check_finished(run_dir)
    try:
        cfg = Config.from_json(run.config)
    except (ValueError, TypeError, KeyError) as e:
        raise UserError(f"{run.config} is not a valid run config: {e}") from None
    of(cfg)
    return cfg


def load_run(run_dir: str | os.PathLike) -> tuple[Config, MultiOptimizerModel]:
    """The config and trained model of a run directory, or a UserError saying what is missing.

    The model's options are its run's config section: `.keras` files written before the
    options were one section hold only the training options, and the run's config is the
    record of how it was trained (whether a DCGAN samples its EMA generator, say)."""
    cfg = run_config(run_dir)
    path = rundir.RunDir(run_dir).model
    try:
        model = keras.saving.load_model(path)
    except Exception as e:
        raise UserError(f"cannot load {path}: {e}") from None
    model.options = of(cfg).options(cfg)
    return cfg, model
