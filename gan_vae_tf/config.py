"""Run configuration: plain frozen data, named presets, command-line overrides, JSON round-trip.

A config says everything a run needs; the models and the data code receive it and never read
the command line or the environment themselves.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from gan_vae_tf.errors import UserError

PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
MODEL_SECTIONS = ("gan", "vae")  # a config's `model` names the section that sizes its model
DATASETS = ("mnist", "fashion_mnist", "anime")
LABELLED_DATASETS = ("mnist", "fashion_mnist")  # the image folders (anime) have no labels
LIKELIHOODS = ("bernoulli", "gaussian")
# How the network that reads images (D, the encoder) takes a conditional model's label: the
# option, and its values. PLANES: one-hot planes after the image's channels; the others: a
# second input, met after the convolutions.
PLANES = "planes"
LABEL_INPUTS = {
    "gan.disc_label": (PLANES, "projection"),
    "vae.encoder_label": (PLANES, "features"),
}


@dataclass(frozen=True)
class DataConfig:
    dataset: str = "mnist"
    data_dir: str | None = None
    image_size: int = 28
    channels: int = 1
    limit: int | None = None
    binarize: bool = False  # static threshold at 0.5, as in the CVAE report


@dataclass(frozen=True)
class GANConfig:
    """DCGAN sizes. The generator projects noise to `base_size` x `base_size` x `gen_base_width`,
    then runs one Conv2DTranspose per entry of `gen_widths`/`gen_strides`; the last stride belongs
    to the output layer."""

    noise_dim: int = 100
    kernel_size: int = 5
    gen_base_width: int = 256
    gen_widths: tuple[int, ...] = (128, 64)
    gen_strides: tuple[int, ...] = (1, 2, 2)
    gen_activation: str = "leaky_relu"
    disc_widths: tuple[int, ...] = (64, 128)
    disc_batchnorm: bool = False  # on every conv after the first, as in DCGAN-64
    disc_dropout: float = 0.3
    leaky_slope: float = 0.3
    disc_learning_rate: float | None = None  # None: train.learning_rate (TTUR when it differs)
    label_smoothing: float = (
        0.0  # one-sided: the discriminator's target for real images is 1 - this
    )
    r1_gamma: float = 0.0  # R1 penalty on the discriminator's gradient at real images; 0: none
    r1_every: int = 1  # lazy R1 (StyleGAN2): the penalty, times this, on every this-th D step
    alternating: bool = False  # update D first, then G against the updated D (else simultaneous)
    disc_spectral_norm: bool = False  # spectral normalization of D's Conv2D and Dense layers
    ema_decay: float = 0.0  # generator EMA; 0 keeps none
    # The same functions through faster CPU kernels (layers.py): D's first and G's last
    # (stride-2, image-side) convolutions as pixel (un)shuffle + 3x3, and fused batch norm.
    pixel_shuffle: bool = False
    fused_batchnorm: bool = False
    sample_with_ema: bool = True  # PNGs, evaluate and report sample the EMA generator when kept
    classes: int = 0  # > 0: class-conditional, G and D see a one-hot label (labelled data only)
    disc_label: str = PLANES  # how D takes the label: one-hot planes, or "projection"

    def check_images(self, data: DataConfig) -> None:
        """What a DCGAN of these sizes asks of the run's images."""
        upscale = math.prod(self.gen_strides)
        if data.image_size % upscale:
            raise UserError(
                f"image size {data.image_size} is not a multiple of the generator's "
                f"upsampling factor {upscale}"
            )


@dataclass(frozen=True)
class VAEConfig:
    """CVAE sizes. The decoder mirrors the encoder: a Dense to a small map of
    `decoder_base_width` channels, then a stride-2 Conv2DTranspose per `decoder_widths` entry."""

    latent_dim: int = 2
    kernel_size: int = 3
    encoder_widths: tuple[int, ...] = (32, 64)
    decoder_base_width: int = 32
    decoder_widths: tuple[int, ...] = (64, 32)
    batchnorm: bool = False
    activation: str = "relu"
    likelihood: str = "bernoulli"
    obs_sigma: float = (
        0.1  # std of the Gaussian likelihood for continuous pixels (initial, if learned)
    )
    learn_obs_sigma: bool = False  # learn the Gaussian's std (one for all pixels) with the ELBO
    kl_warmup: int = 0  # steps over which the KL's weight in the training loss rises from 0 to 1
    # > 0: the prior p(z) is a learned mixture of this many diagonal Gaussians, trained with the
    # ELBO (its KL then a single-sample estimate); 0: the standard normal N(0, I).
    prior_components: int = 0
    classes: int = 0  # > 0: a CVAE conditioned on a one-hot label (labelled data only)
    encoder_label: str = PLANES  # how the encoder takes it: one-hot planes, or "features"

    def check_images(self, data: DataConfig) -> None:
        """What a VAE of these sizes and likelihood asks of the run's images."""
        if self.likelihood == "bernoulli" and not data.binarize:
            raise UserError(
                "the Bernoulli likelihood needs binary pixels: set data.binarize=true "
                "or vae.likelihood=gaussian"
            )
        down = 2 ** len(self.decoder_widths)
        if data.image_size % down:
            raise UserError(
                f"image size {data.image_size} is not a multiple of the decoder's "
                f"upsampling factor {down}"
            )


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 50
    batch_size: int = 256
    learning_rate: float = 1e-4
    beta_1: float = 0.9
    beta_2: float = 0.999
    lr_decay: float = 0.0  # last fraction of the run's steps over which the rates fall to zero
    seed: int = 0
    precision: str = "auto"
    steps_per_execution: int = 1
    steps_per_epoch: int | None = None  # None: one pass over the data; else a fixed step count
    deterministic: bool = False  # TensorFlow op determinism: identical losses for one seed
    strategy: str = "default"  # tf.distribute: default, mirrored, multiworker
    checkpoint_every: float = 5.0  # minutes between mid-epoch checkpoints; 0 = epoch ends only
    sample_grid: int = 4  # the per-epoch PNG shows sample_grid x sample_grid samples


@dataclass(frozen=True)
class Config:
    preset: str
    model: str  # the kind of model, and the name of the section that sizes it: "gan" or "vae"
    data: DataConfig = field(default_factory=DataConfig)
    gan: GANConfig = field(default_factory=GANConfig)
    vae: VAEConfig = field(default_factory=VAEConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (self.data.image_size, self.data.image_size, self.data.channels)

    @property
    def classes(self) -> int:
        """How many classes the model draws for (0: unconditional)."""
        return getattr(self, self.model).classes

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Config:
        sections = {f.name: f.type for f in fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, value in d.items():
            if key not in sections:
                continue
            sub = _SECTIONS.get(key)
            kwargs[key] = section_from_dict(sub, value) if sub else value
        return cls(**kwargs)

    @classmethod
    def from_json(cls, path: str | Path) -> Config:
        return cls.from_dict(json.loads(Path(path).read_text()))


_SECTIONS = {"data": DataConfig, "gan": GANConfig, "vae": VAEConfig, "train": TrainConfig}


def section_from_dict(cls: type, values: dict[str, Any]) -> Any:
    """One section (`GANConfig`, ...) from its JSON form: lists become tuples, and keys this
    version does not know (from a newer or older file) are left out."""
    known = {f.name: f for f in fields(cls)}
    clean = {}
    for k, v in values.items():
        if k in known:
            clean[k] = tuple(v) if isinstance(v, list) else v
    return cls(**clean)


_MNIST = DataConfig(dataset="mnist", image_size=28, channels=1)
_ANIME = DataConfig(dataset="anime", image_size=64, channels=3)

_DCGAN64 = GANConfig(
    noise_dim=100,
    kernel_size=4,
    gen_base_width=512,
    gen_widths=(256, 128, 64),
    gen_strides=(2, 2, 2, 2),
    gen_activation="relu",
    disc_widths=(64, 128, 256, 512),
    disc_batchnorm=True,
    disc_dropout=0.0,
    leaky_slope=0.2,
)
_VAE64 = VAEConfig(
    latent_dim=128,
    kernel_size=3,
    encoder_widths=(32, 64, 128, 256, 512),
    decoder_base_width=512,
    decoder_widths=(256, 128, 64, 32, 32),
    batchnorm=True,
    activation="leaky_relu",
    likelihood="gaussian",
    obs_sigma=0.1,
)

# The reports' exact settings, kept under their own names for the reproduction tables.
REPORT_PRESETS: dict[str, Config] = {
    # TensorFlow DCGAN tutorial, as in the MNIST report: batch 256, 50 epochs, Adam 1e-4.
    "gan-mnist-report": Config(
        preset="gan-mnist-report",
        model="gan",
        data=_MNIST,
        train=TrainConfig(epochs=50, batch_size=256, learning_rate=1e-4),
    ),
    # TensorFlow CVAE tutorial: binarized digits, latent 2, batch 32, 10 epochs, Adam 1e-4.
    "vae-mnist-report": Config(
        preset="vae-mnist-report",
        model="vae",
        data=replace(_MNIST, binarize=True),
        train=TrainConfig(epochs=10, batch_size=32, learning_rate=1e-4),
    ),
    # Radford et al. DCGAN-64 (PyTorch tutorial layout): 4x4 kernels, BN + ReLU, Adam 2e-4/0.5.
    "gan-anime-report": Config(
        preset="gan-anime-report",
        model="gan",
        data=_ANIME,
        gan=_DCGAN64,
        train=TrainConfig(epochs=50, batch_size=128, learning_rate=2e-4, beta_1=0.5),
    ),
    # A PyTorch-VAE style CVAE: hidden widths 32..512 with BN + LeakyReLU, latent 128.
    "vae-anime-report": Config(
        preset="vae-anime-report",
        model="vae",
        data=_ANIME,
        vae=_VAE64,
        train=TrainConfig(epochs=50, batch_size=64, learning_rate=5e-4),
    ),
}

# The defaults: chosen by measured quality per CPU-minute (benchmarks/bench_quality.py and
# experiments/bench/); still DCGANs and CVAEs of the same layer types. An "epoch" here is a
# fixed number of steps, so a run's length does not depend on which copy of the data was found.
DEFAULT_PRESETS: dict[str, Config] = {
    # A tutorial DCGAN without dropout at batch 64 (generator at a quarter of the widths,
    # discriminator 16 -> 64), with a generator EMA, lazy R1 on the discriminator (every 16th
    # step), alternating updates, Adam 1e-3 without momentum (beta_1 0) and a linear decay to
    # zero over the second half of the run: the best quality per CPU-minute of the candidates
    # in experiments/bench/search/. Its length is set so that the run fits a 12-minute budget
    # on a 2-core CPU (experiments/RESULTS.md). Its thin image-side convolutions and batch norms
    # run as faster kernels of the same functions, ten steps per call to the compiled step.
    "gan-mnist": Config(
        preset="gan-mnist",
        model="gan",
        data=_MNIST,
        gan=GANConfig(
            gen_base_width=64,
            gen_widths=(32, 16),
            disc_widths=(16, 64),
            disc_dropout=0.0,
            ema_decay=0.999,
            r1_gamma=1.0,
            r1_every=16,
            alternating=True,
            pixel_shuffle=True,
            fused_batchnorm=True,
        ),
        train=TrainConfig(
            epochs=20,
            steps_per_epoch=1000,
            steps_per_execution=10,
            batch_size=64,
            learning_rate=1e-3,
            beta_1=0.0,
            lr_decay=0.5,
            sample_grid=8,  # 64 digits: enough that every class shows
        ),
    ),
    # The tutorial CVAE's layers at latent 16 with 5x5 kernels and a learned prior (a mixture
    # of 200 Gaussians), batch 64, Adam 2e-3 decaying linearly to zero over the second half of
    # 10,000 steps: the best test ELBO and sample quality per CPU-minute of the candidates in
    # experiments/bench/search-vae/. Latent 2 folds whole digits together; under N(0, I) the
    # prior samples fall between the digits the encoder uses, which the learned prior covers;
    # 5x5 kernels paid for their cost, batch norm and wider layers did not.
    "vae-mnist": Config(
        preset="vae-mnist",
        model="vae",
        data=replace(_MNIST, binarize=True),
        vae=VAEConfig(latent_dim=16, kernel_size=5, prior_components=200),
        train=TrainConfig(
            epochs=10,
            steps_per_epoch=1000,
            steps_per_execution=10,
            batch_size=64,
            learning_rate=2e-3,
            lr_decay=0.5,
            sample_grid=8,
        ),
    ),
    "gan-anime": Config(
        preset="gan-anime",
        model="gan",
        data=_ANIME,
        gan=replace(
            _DCGAN64,
            gen_base_width=256,
            gen_widths=(128, 64, 32),
            disc_widths=(32, 64, 128, 256),
            ema_decay=0.999,
        ),
        train=TrainConfig(
            epochs=20, steps_per_epoch=250, batch_size=64, learning_rate=2e-4, beta_1=0.5
        ),
    ),
    # The report's VAE-64 at half the widths, with a learned observation scale (a calibrated
    # Gaussian) and a learned prior (a mixture of 100 Gaussians), batch 32, Adam 1e-3 decaying
    # to zero over the second half of its steps: the best SWD and test ELBO per CPU-minute of
    # the candidates in experiments/bench/search-vae/anime.md, sized to end inside 30 minutes.
    "vae-anime": Config(
        preset="vae-anime",
        model="vae",
        data=_ANIME,
        vae=replace(
            _VAE64,
            encoder_widths=(16, 32, 64, 128, 256),
            decoder_base_width=256,
            decoder_widths=(128, 64, 32, 16, 16),
            learn_obs_sigma=True,
            prior_components=100,
        ),
        train=TrainConfig(
            epochs=30, steps_per_epoch=1000, batch_size=32, learning_rate=1e-3, lr_decay=0.5
        ),
    ),
}


def _conditional(name: str, preset: str, classes: int = 10, **changes) -> Config:
    """`preset`'s recipe with the label shown to its networks (`gan.classes`/`vae.classes`),
    and `changes` to that model's section."""
    cfg = DEFAULT_PRESETS[preset]
    section = replace(getattr(cfg, cfg.model), classes=classes, **changes)
    return replace(cfg, preset=name, **{cfg.model: section})


# Class-conditional versions of the digit defaults: "draw a 7". The default recipes with the
# label as a one-hot input to the generator and decoder. The GAN's discriminator takes it by
# projection: side by side with one-hot planes it ran 4-9% more steps a minute and drew the
# digit asked for more often at every minute (98.6% against 97.7% at 6 minutes,
# experiments/bench/quality-cgan-labels.md). The CVAE keeps N(0, I) and a latent of 8: z then
# has less room for the class, and the decoder takes it from the label. Of its samples 87% were the digit asked
# for under vae-mnist's learned prior (shared by every class), 94% under N(0, I) at latent 16,
# 98% at latent 8, which costs 6.7 nats of test ELBO (experiments/RESULTS.md).
CONDITIONAL_PRESETS: dict[str, Config] = {
    "cgan-mnist": _conditional("cgan-mnist", "gan-mnist", disc_label="projection"),
    "cvae-mnist": _conditional("cvae-mnist", "vae-mnist", prior_components=0, latent_dim=8),
}

PRESETS: dict[str, Config] = {**DEFAULT_PRESETS, **CONDITIONAL_PRESETS, **REPORT_PRESETS}


def preset(name: str) -> Config:
    if name not in PRESETS:
        raise UserError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}")
    return PRESETS[name]


def _parse_value(text: str, annotation: str, name: str) -> Any:
    """`text` as the type a config field is annotated with (e.g. "float | None")."""
    kinds = [k.strip() for k in annotation.split("|")]
    if text.lower() in ("none", "null") and "None" in kinds:
        return None
    try:
        if "bool" in kinds:
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        if "int" in kinds:
            return int(text)
        if "float" in kinds:
            return float(text)
        if any(k.startswith("tuple") for k in kinds):
            return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise UserError(f"--set {name}={text}: expected a value of type {annotation}") from None
    return text


def override(cfg: Config, assignments: list[str]) -> Config:
    """Apply `section.key=value` strings, e.g. `vae.latent_dim=8` or `train.epochs=3`."""
    for item in assignments:
        if "=" not in item or "." not in item.split("=", 1)[0]:
            raise UserError(f"--set expects section.key=value, got {item!r}")
        dotted, text = item.split("=", 1)
        section, key = dotted.split(".", 1)
        if section not in _SECTIONS:
            raise UserError(
                f"--set {dotted}: unknown section {section!r}; use one of {', '.join(_SECTIONS)}"
            )
        sub = getattr(cfg, section)
        annotations = {f.name: str(f.type) for f in fields(sub)}
        if key not in annotations:
            raise UserError(f"--set {dotted}: unknown key; {section} has {', '.join(annotations)}")
        value = _parse_value(text, annotations[key], key)
        cfg = replace(cfg, **{section: replace(sub, **{key: value})})
    return validate(cfg)


def validate(cfg: Config) -> Config:
    """Reject values that would only fail later, deep inside TensorFlow."""
    t, d = cfg.train, cfg.data
    for name, value in (
        ("epochs", t.epochs),
        ("batch size", t.batch_size),
        ("image size", d.image_size),
        ("channels", d.channels),
        ("steps per execution", t.steps_per_execution),
        ("latent size", cfg.vae.latent_dim),
        ("noise size", cfg.gan.noise_dim),
        ("gan.r1_every", cfg.gan.r1_every),
        ("train.sample_grid", t.sample_grid),
    ):
        if value is None or value <= 0:
            raise UserError(f"{name} must be a positive integer, got {value}")
    for name, value in (("beta_1", t.beta_1), ("beta_2", t.beta_2)):
        if not 0.0 <= value < 1.0:
            raise UserError(f"train.{name} must be in [0, 1), got {value}")
    if not 0.0 <= t.lr_decay <= 1.0:
        raise UserError(
            f"train.lr_decay must be in [0, 1] (a fraction of the run), got {t.lr_decay}"
        )
    if t.seed < 0:
        raise UserError(f"seed must be a non-negative integer, got {t.seed}")
    if not t.checkpoint_every >= 0:
        raise UserError(
            f"checkpoint interval must be >= 0 minutes (0: epoch ends only), "
            f"got {t.checkpoint_every}"
        )
    if t.steps_per_epoch is not None and t.steps_per_epoch <= 0:
        raise UserError(f"steps per epoch must be a positive integer, got {t.steps_per_epoch}")
    v = cfg.vae
    if not v.obs_sigma > 0.0:
        raise UserError(f"vae.obs_sigma must be > 0, got {v.obs_sigma}")
    if v.learn_obs_sigma and v.likelihood != "gaussian":
        raise UserError(
            "vae.learn_obs_sigma needs vae.likelihood=gaussian (a Bernoulli has no scale)"
        )
    if v.prior_components < 0:
        raise UserError(
            f"vae.prior_components must be >= 0 (0: a standard-normal prior), "
            f"got {v.prior_components}"
        )
    if v.kl_warmup < 0:
        raise UserError(f"vae.kl_warmup must be >= 0 steps, got {v.kl_warmup}")
    g = cfg.gan
    if not 0.0 <= g.ema_decay < 1.0:
        raise UserError(f"gan.ema_decay must be in [0, 1), got {g.ema_decay}")
    if not g.r1_gamma >= 0.0:
        raise UserError(f"gan.r1_gamma must be >= 0, got {g.r1_gamma}")
    if g.pixel_shuffle and (
        g.gen_strides[-1] != 2 or not 3 <= g.kernel_size <= 6 or d.image_size % 2
    ):
        raise UserError(
            "gan.pixel_shuffle needs the generator's last stride to be 2, a kernel size of 3 to "
            f"6 and an even image size, got stride {g.gen_strides[-1]}, kernel {g.kernel_size} "
            f"and image size {d.image_size}"
        )
    if not 0.0 <= g.label_smoothing < 1.0:
        raise UserError(f"gan.label_smoothing must be in [0, 1), got {g.label_smoothing}")
    for name, value in (
        ("learning rate", t.learning_rate),
        ("gan.disc_learning_rate", g.disc_learning_rate),
    ):
        if value is not None and value <= 0:
            raise UserError(f"{name} must be positive, got {value}")
    if d.limit is not None and d.limit <= 0:
        raise UserError(f"--limit must be positive, got {d.limit}")
    if t.precision not in PRECISIONS:
        raise UserError(f"precision must be one of {', '.join(PRECISIONS)}, got {t.precision!r}")
    if t.strategy not in ("default", "mirrored", "multiworker"):
        raise UserError(f"strategy must be default, mirrored or multiworker, got {t.strategy!r}")
    if d.dataset not in DATASETS:
        raise UserError(f"dataset must be one of {', '.join(DATASETS)}, got {d.dataset!r}")
    if cfg.vae.likelihood not in LIKELIHOODS:
        raise UserError(f"likelihood must be one of {', '.join(LIKELIHOODS)}")
    if len(g.gen_strides) != len(g.gen_widths) + 1:
        raise UserError(
            "gan.gen_strides needs one stride per gen_widths entry plus the output layer"
        )
    if cfg.model not in MODEL_SECTIONS:
        raise UserError(f"model must be one of {', '.join(MODEL_SECTIONS)}, got {cfg.model!r}")
    section = getattr(cfg, cfg.model)
    section.check_images(d)
    for option, allowed in LABEL_INPUTS.items():
        model, key = option.split(".")
        value = getattr(getattr(cfg, model), key)
        if value not in allowed:
            raise UserError(f"{option} must be one of {', '.join(allowed)}, got {value!r}")
    if section.classes < 0:
        raise UserError(f"{cfg.model}.classes must be >= 0, got {section.classes}")
    if section.classes and d.dataset not in LABELLED_DATASETS:
        raise UserError(
            f"a class-conditional model needs labels, and {d.dataset} images have none: "
            f"use {' or '.join(LABELLED_DATASETS)}, or {cfg.model}.classes=0"
        )
    return cfg
