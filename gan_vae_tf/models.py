"""`DCGAN` and `VAE`: Keras models that own their train/test steps, optimizers and trackers.

`fit()` compiles `train_step` with `tf.function`; both steps read their randomness from
`SeedGenerator`s, so every compiled step draws fresh noise. Under `mixed_float16` each
optimizer is a `LossScaleOptimizer` and the step scales its own loss with `scale_loss`;
losses and log-densities are float32 under every policy.
"""

from __future__ import annotations

import logging

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from gan_vae_tf import losses
from gan_vae_tf.config import TrainConfig
from gan_vae_tf.layers import Reparameterize

log = logging.getLogger(__name__)


@keras.saving.register_keras_serializable(package="gan_vae_tf")
class LinearTail(keras.optimizers.schedules.LearningRateSchedule):
    """A constant learning rate that falls linearly to zero over the last `decay_steps` of a
    run of `total_steps`: the late small steps settle the weights the EMA averages."""

    def __init__(self, learning_rate: float, total_steps: int, decay_steps: int):
        if not 0 < decay_steps <= total_steps:
            raise ValueError(f"decay_steps must be in (0, {total_steps}], got {decay_steps}")
        self.learning_rate = float(learning_rate)
        self.total_steps = int(total_steps)
        self.decay_steps = int(decay_steps)

    def __call__(self, step):
        left = ops.cast(self.total_steps, "float32") - ops.cast(step, "float32")
        return self.learning_rate * ops.clip(left / self.decay_steps, 0.0, 1.0)

    def get_config(self) -> dict:
        return {
            "learning_rate": self.learning_rate,
            "total_steps": self.total_steps,
            "decay_steps": self.decay_steps,
        }


def adam(learning_rate, beta_1: float = 0.9, beta_2: float = 0.999) -> keras.optimizers.Optimizer:
    return keras.optimizers.Adam(learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2)


def run_adam(
    train: TrainConfig, total_steps: int | None, learning_rate: float | None = None
) -> keras.optimizers.Optimizer:
    """Adam with the run's betas at `learning_rate` (else `train.learning_rate`): held, or with
    `train.lr_decay` > 0 a `LinearTail` over the run's `total_steps`."""
    rate = train.learning_rate if learning_rate is None else learning_rate
    if train.lr_decay:
        if not total_steps:
            raise ValueError("a learning-rate decay needs the run's total number of steps")
        rate = LinearTail(rate, total_steps, max(1, round(train.lr_decay * total_steps)))
    return adam(rate, train.beta_1, train.beta_2)


def _scaled(optimizer, loss):
    """The loss to differentiate. Divided by the number of replicas, because the optimizer sums
    replica gradients (each replica's loss is a mean over its share of the global batch), and
    multiplied by the loss scale under mixed_float16. Must be called inside the GradientTape,
    so the tape records both."""
    loss = loss / tf.distribute.get_strategy().num_replicas_in_sync
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return optimizer.scale_loss(loss)
    return loss


def _apply(tape: tf.GradientTape, scaled_loss, optimizer, variables):
    """One update; a LossScaleOptimizer unscales the gradients and skips non-finite steps.
    Returns 1.0 for a step the loss scaler skipped, else 0.0: a skip is the only thing that
    lowers the loss scale, so comparing it before and after costs no second pass over the
    gradients."""
    return _apply_gradients(tape.gradient(scaled_loss, variables), optimizer, variables)


def _apply_gradients(grads, optimizer, variables):
    """`_apply` for gradients already taken (at the optimizer's loss scale)."""
    if not isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        optimizer.apply(grads, variables)
        return 0.0
    scale_before = ops.add(optimizer.dynamic_scale, 0.0)  # a copy, not an alias of the variable
    optimizer.apply(grads, variables)
    return ops.cast(ops.less(optimizer.dynamic_scale, scale_before), "float32")


def grid_codes(cfg, rng, dim: int) -> np.ndarray:
    """The fixed normal codes of the per-epoch PNG: `train.sample_grid` squared of them."""
    return rng.standard_normal((cfg.train.sample_grid**2, dim)).astype("float32")


class _CustomTrainer(keras.Model):
    """What both models share: a custom `compile()` that takes one optimizer per trained
    network (and is restored from `.keras` files), metric trackers that reset each epoch, and
    a count of the steps a loss scaler skipped (mixed_float16 overflow: logged, not a failure).

    Each model describes itself through `networks()` and `optimizers()`, so checkpoints,
    evaluation, reports and diagrams iterate over them instead of asking what kind it is.
    """

    trackers: dict[str, keras.metrics.Metric]
    #: Names of the optimizers `compile()` takes, one per trained network (checkpoint keys).
    optimizer_names: tuple[str, ...] = ()
    #: The constructor arguments that are networks, serialized in `get_config()`.
    network_keys: tuple[str, ...] = ()
    #: Whether training also reports test-set metrics each epoch (the VAE's test ELBO).
    validates: bool = False

    @classmethod
    def fixed_inputs(cls, cfg, test_images, rng) -> dict:
        """The inputs of the per-epoch sample grid, drawn once per run (and checkpointed), so
        successive epochs show the same samples improving."""
        raise NotImplementedError

    def renderer(self, fixed: dict):
        """A function of the model -> the uint8 sample grid of `fixed`'s inputs."""
        raise NotImplementedError

    def test_metrics(self, cfg, dataset, num: int, iwae_k: int = 0, iwae_images: int = 0) -> dict:
        """What `evaluate` measures of this kind of model on held-out images (the metric
        functions themselves live in evaluate.py and metrics.py)."""
        raise NotImplementedError

    @classmethod
    def describe(cls, cfg) -> tuple[str, str]:
        """(the kind's name, its latent space) for the report's table."""
        raise NotImplementedError

    def networks(self) -> dict[str, keras.Model]:
        """The networks this model is made of, by name (the `.keras` file stems)."""
        raise NotImplementedError

    @classmethod
    def from_config(cls, config):
        """`get_config()` stores each network serialized under its name (None for one the
        model does without, such as a DCGAN's EMA generator when it keeps none)."""
        config = dict(config)
        for key in cls.network_keys:
            if config.get(key) is not None:
                config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)

    def optimizers(self) -> dict[str, keras.optimizers.Optimizer]:
        return {name: getattr(self, name) for name in self.optimizer_names}

    def _trained_variables(self, name: str) -> list:
        raise NotImplementedError

    def compile(
        self, learning_rate: float = 1e-4, beta_1: float = 0.9, loss_scale: bool = False, **kwargs
    ):
        """Optimizers by name (e.g. `g_optimizer=..., d_optimizer=...`); any not given is an
        Adam(learning_rate, beta_1). With `loss_scale` each is wrapped in a
        `LossScaleOptimizer` (mixed_float16)."""
        given = {name: kwargs.pop(name, None) for name in self.optimizer_names}
        super().compile(**kwargs)
        self._loss_scale = loss_scale
        if loss_scale and "skipped_steps" not in self.trackers:
            self.trackers["skipped_steps"] = keras.metrics.Sum(name="skipped_steps")
        for name, opt in given.items():
            opt = opt or adam(learning_rate, beta_1)
            if loss_scale and not isinstance(opt, keras.optimizers.LossScaleOptimizer):
                opt = keras.optimizers.LossScaleOptimizer(opt)
            opt.build(self._trained_variables(name))
            setattr(self, name, opt)

    def get_compile_config(self):
        if not self.optimizer_names or not hasattr(self, self.optimizer_names[0]):
            return {}
        return {
            "loss_scale": self._loss_scale,
            **{name: keras.optimizers.serialize(opt) for name, opt in self.optimizers().items()},
        }

    def compile_from_config(self, config):
        """Restores both this version's configs (serialized optimizers) and older ones
        (`learning_rate`/`beta_1`/`loss_scale`, every network with the same Adam)."""
        config = dict(config)
        for name in self.optimizer_names:
            if isinstance(config.get(name), dict):
                config[name] = keras.optimizers.deserialize(config[name])
        self.compile(**config)

    @property
    def metrics(self):
        return list(self.trackers.values())

    def _count_skips(self, *skipped) -> None:
        if "skipped_steps" in self.trackers:
            self.trackers["skipped_steps"].update_state(sum(skipped))


def update_average(average: keras.Model, net: keras.Model, decay: float, t) -> None:
    """average <- d * average + (1 - d) * weight for every weight of `net`, after its t-th
    update (t = 1, 2, ...). The decay ramps up as min(decay, (1 + t) / (10 + t)), so the
    average follows the fast early changes instead of holding on to the random initial weights
    (0.999^1000 would still weigh them by 0.37)."""
    t = ops.cast(t, "float32")
    d = ops.minimum(decay, (1.0 + t) / (10.0 + t))
    for a, weight in zip(average.weights, net.weights, strict=True):
        a.assign(d * a + (1.0 - d) * ops.cast(weight, a.dtype))


def copy_network(net: keras.Model, name: str) -> keras.Model:
    """A new network of the same layers, dtype policies and current weights."""
    config = dict(net.get_config(), name=name)
    copy = net.__class__.from_config(config)
    copy.set_weights(net.get_weights())
    return copy


@keras.saving.register_keras_serializable(package="gan_vae_tf")
class DCGAN(_CustomTrainer):
    """A generator and a discriminator trained together with the non-saturating BCE losses.

    With `ema_decay` > 0 the model also keeps `generator_ema`, an exponential moving average of
    every generator weight (batch-norm statistics included), updated inside the compiled train
    step. Averaged weights give smoother, steadier samples than the last step's, so sampling
    (`call`, `sample`) uses it unless `sample_with_ema` is set to False. `label_smoothing` is
    one-sided: the discriminator's target for real images is 1 - label_smoothing.
    """

    optimizer_names = ("g_optimizer", "d_optimizer")
    network_keys = ("generator", "discriminator", "generator_ema")

    @classmethod
    def fixed_inputs(cls, cfg, test_images, rng) -> dict:
        return {"noise": grid_codes(cfg, rng, cfg.gan.noise_dim)}

    def renderer(self, fixed: dict):
        from gan_vae_tf import plots

        return plots.gan_renderer(fixed["noise"])

    def test_metrics(self, cfg, dataset, num: int, iwae_k: int = 0, iwae_images: int = 0) -> dict:
        from gan_vae_tf import data, evaluate

        result = evaluate.evaluate_gan(self, data.sample(dataset.test, num))
        return {**result, "generator": "ema" if self.sample_with_ema else "raw"}

    @classmethod
    def describe(cls, cfg) -> tuple[str, str]:
        return "DCGAN", f"{cfg.gan.noise_dim}-d noise; no encoder, no inference"

    def __init__(
        self,
        generator: keras.Model,
        discriminator: keras.Model,
        seed: int | None = None,
        ema_decay: float = 0.0,
        label_smoothing: float = 0.0,
        generator_ema: keras.Model | None = None,
        r1_gamma: float = 0.0,
        alternating: bool = False,
        r1_every: int = 1,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.r1_gamma = float(r1_gamma)
        self.r1_every = int(r1_every)
        self.alternating = bool(alternating)
        self.generator = generator
        self.discriminator = discriminator
        self.noise_dim = int(generator.input_shape[-1])
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.ema_decay = float(ema_decay)
        self.label_smoothing = float(label_smoothing)
        if self.ema_decay and generator_ema is None:
            generator_ema = copy_network(generator, "generator_ema")
        self.generator_ema = generator_ema if self.ema_decay else None
        if self.generator_ema is not None:
            self.generator_ema.trainable = False  # moved by _update_ema, never by an optimizer
        self.sample_with_ema = self.generator_ema is not None
        self.trackers = {
            name: keras.metrics.Mean(name=name) for name in ("d_loss", "g_loss", "d_real", "d_fake")
        }
        self.built = True

    def networks(self) -> dict[str, keras.Model]:
        nets = {"generator": self.generator, "discriminator": self.discriminator}
        if self.generator_ema is not None:
            nets["generator_ema"] = self.generator_ema
        return nets

    def _trained_variables(self, name: str) -> list:
        net = self.generator if name == "g_optimizer" else self.discriminator
        return net.trainable_variables

    def compile(self, g_optimizer=None, d_optimizer=None, **kwargs):
        super().compile(g_optimizer=g_optimizer, d_optimizer=d_optimizer, **kwargs)

    @classmethod
    def from_run_config(cls, cfg, policy: str = "float32") -> DCGAN:
        from gan_vae_tf import networks

        gan, nets = cfg.gan, (networks.generator(cfg, policy), networks.discriminator(cfg, policy))
        options = dict(
            ema_decay=gan.ema_decay,
            label_smoothing=gan.label_smoothing,
            r1_gamma=gan.r1_gamma,
            r1_every=gan.r1_every,
            alternating=gan.alternating,
        )
        model = cls(*nets, seed=cfg.train.seed, name="dcgan", **options)
        model.sample_with_ema = model.generator_ema is not None and cfg.gan.sample_with_ema
        return model

    @staticmethod
    def run_optimizers(cfg, total_steps: int | None = None) -> dict:
        """Adam for both networks; the discriminator's learning rate may differ (TTUR)."""
        return {
            "g_optimizer": run_adam(cfg.train, total_steps),
            "d_optimizer": run_adam(cfg.train, total_steps, cfg.gan.disc_learning_rate),
        }

    @property
    def sampler(self) -> keras.Model:
        """The generator that makes samples: the EMA one when kept, unless told otherwise."""
        return self.generator_ema if self.sample_with_ema else self.generator

    def sample_noise(self, n: int):
        return keras.random.normal((n, self.noise_dim), seed=self.seed_generator)

    def call(self, noise, training: bool = False):
        return self.sampler(noise, training=training)

    def sample(self, n: int):
        """n generated images in [0, 1], the same range as `VAE.sample`."""
        return (self.sampler(self.sample_noise(n), training=False) + 1.0) / 2.0

    def _update_ema(self) -> None:
        update_average(
            self.generator_ema, self.generator, self.ema_decay, self.g_optimizer.iterations
        )

    def _real_logits_and_r1(self, real):
        """D's logits on real images and the R1 penalty, the mean squared norm of D's gradient
        at them. The inner tape lets the caller's tape differentiate the penalty too; under
        mixed_float16 its backward pass runs at the discriminator optimizer's loss scale, so
        small input gradients do not flush to zero in float16."""
        real = ops.cast(real, "float32")
        opt = self.d_optimizer
        scale = opt.dynamic_scale if isinstance(opt, keras.optimizers.LossScaleOptimizer) else 1.0
        with tf.GradientTape() as tape:
            tape.watch(real)
            real_logits = self.discriminator(real, training=True)
            total = ops.sum(ops.cast(real_logits, "float32")) * scale
        return real_logits, losses.gradient_penalty(tape.gradient(total, real) / scale)

    def _real_logits_and_penalty(self, real):
        """D's logits on real images and the weighted R1 penalty, gamma / 2 times R1, when it
        is due on every step; else 0 (no R1, or lazy R1, which `_lazy_r1_gradients` adds)."""
        if not self.r1_gamma or self.r1_every > 1:
            return self.discriminator(real, training=True), 0.0
        real_logits, r1 = self._real_logits_and_r1(real)
        return real_logits, 0.5 * self.r1_gamma * r1

    def _lazy_r1_gradients(self, real, variables) -> list:
        """Lazy R1 (StyleGAN2's lazy regularization): on every `r1_every`-th discriminator
        step, the gradients of the penalty at `r1_every` times its weight, so its mean pull is
        unchanged; zeros on the steps between. Taken in a `tf.cond` of their own, apart from
        the BCE's tape: differentiating through a cond that also held the real-image pass
        made every step run that pass's input gradient, which nothing uses, and zero-fill the
        skipped branch's intermediates (the profiler put both at about 3 ms of op time in a
        gan-mnist step; the wall-clock gain was within noise). The due step makes its own
        pass over the real batch: a discriminator with batch norm updates its moving
        statistics once more, one with dropout draws another mask (gan-mnist has neither)."""

        def due():
            with tf.GradientTape() as tape:
                _, r1 = self._real_logits_and_r1(real)
                penalty = _scaled(self.d_optimizer, 0.5 * self.r1_gamma * self.r1_every * r1)
            grads = tape.gradient(penalty, variables)  # None for a weight R1 ignores (a bias)
            pairs = zip(grads, variables, strict=True)
            return [ops.zeros_like(v) if g is None else g for g, v in pairs]

        def not_due():
            return [ops.zeros_like(v) for v in variables]

        return tf.cond(ops.equal(self.d_optimizer.iterations % self.r1_every, 0), due, not_due)

    def _update_discriminator(self, tape, scaled_loss, real):
        """One discriminator update from its BCE (and R1) tape, plus lazy R1's gradients."""
        variables = self.discriminator.trainable_variables
        grads = tape.gradient(scaled_loss, variables)
        if self.r1_gamma and self.r1_every > 1:
            lazy = self._lazy_r1_gradients(real, variables)
            grads = [g + r for g, r in zip(grads, lazy, strict=True)]
        return _apply_gradients(grads, self.d_optimizer, variables)

    def _discriminator_loss(self, real, fake):
        """(BCE loss, weighted R1 penalty, real logits, fake logits) of the discriminator on one
        real and one generated batch. The penalty is kept apart from the loss it is trained
        with so the logged `d_loss` is the same BCE that `test_step` reports, and stays finite
        when a float16 step overflows."""
        real_logits, penalty = self._real_logits_and_penalty(real)
        fake_logits = self.discriminator(fake, training=True)
        loss = losses.discriminator_loss(
            real_logits, fake_logits, real_label=1.0 - self.label_smoothing
        )
        return loss, penalty, real_logits, fake_logits

    def train_step(self, real):
        """One update of each network from one generated batch. Simultaneous: both losses come
        from the same discriminator pass. Alternating: the discriminator is updated first and
        the generator's loss is taken from the updated discriminator (one more pass over the
        fakes, no second generator pass)."""
        noise = self.sample_noise(ops.shape(real)[0])
        with tf.GradientTape() as g_tape:
            fake = self.generator(noise, training=True)
            with tf.GradientTape() as d_tape:
                d_loss, penalty, real_logits, fake_logits = self._discriminator_loss(real, fake)
                d_scaled = _scaled(self.d_optimizer, d_loss + penalty)
            if self.alternating:
                with g_tape.stop_recording():
                    d_skipped = self._update_discriminator(d_tape, d_scaled, real)
                g_loss = losses.generator_loss(self.discriminator(fake, training=True))
            else:
                g_loss = losses.generator_loss(fake_logits)
            g_scaled = _scaled(self.g_optimizer, g_loss)
        g_skipped = _apply(g_tape, g_scaled, self.g_optimizer, self.generator.trainable_variables)
        if not self.alternating:
            d_skipped = self._update_discriminator(d_tape, d_scaled, real)
        self._count_skips(g_skipped, d_skipped)
        if self.generator_ema is not None:
            self._update_ema()
        return self._track(d_loss, g_loss, real_logits, fake_logits)

    def test_step(self, real):
        fake = self.sampler(self.sample_noise(ops.shape(real)[0]), training=False)
        real_logits = self.discriminator(real, training=False)
        fake_logits = self.discriminator(fake, training=False)
        return self._track(
            losses.discriminator_loss(real_logits, fake_logits),
            losses.generator_loss(fake_logits),
            real_logits,
            fake_logits,
        )

    def _track(self, d_loss, g_loss, real_logits, fake_logits):
        values = {
            "d_loss": d_loss,
            "g_loss": g_loss,
            "d_real": ops.mean(ops.sigmoid(real_logits)),
            "d_fake": ops.mean(ops.sigmoid(fake_logits)),
        }
        for name, value in values.items():
            self.trackers[name].update_state(value)
        return {name: t.result() for name, t in self.trackers.items()}

    def get_config(self):
        return {
            **super().get_config(),
            "generator": keras.saving.serialize_keras_object(self.generator),
            "discriminator": keras.saving.serialize_keras_object(self.discriminator),
            "generator_ema": (
                keras.saving.serialize_keras_object(self.generator_ema)
                if self.generator_ema is not None
                else None
            ),
            "seed": self.seed,
            "ema_decay": self.ema_decay,
            "label_smoothing": self.label_smoothing,
            "r1_gamma": self.r1_gamma,
            "r1_every": self.r1_every,
            "alternating": self.alternating,
        }


@keras.saving.register_keras_serializable(package="gan_vae_tf")
class VAE(_CustomTrainer):
    """A convolutional VAE trained on the negative single-sample Monte-Carlo ELBO.

    ELBO(x) = log p(x | z) - KL(q(z|x) || p(z)) with z ~ q(z|x) drawn once per image; the KL
    to the standard-normal prior is in closed form. `likelihood` is "bernoulli" for binary
    pixels or "gaussian" (fixed `obs_sigma`) for continuous pixels in [0, 1]; all in nats.
    """

    def __init__(
        self,
        encoder: keras.Model,
        decoder: keras.Model,
        likelihood: str = "bernoulli",
        obs_sigma: float = 0.1,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.decoder = decoder
        self.latent_dim = int(decoder.input_shape[-1])
        self.likelihood = likelihood
        self.obs_sigma = float(obs_sigma)
        self.seed = seed
        self.sampler = Reparameterize(seed=seed, name="reparameterize")
        self.prior_seed = keras.random.SeedGenerator(None if seed is None else seed + 1)
        self.trackers = {
            name: keras.metrics.Mean(name=name) for name in ("loss", "elbo", "log_px_z", "kl")
        }
        self.built = True

    optimizer_names = ("vae_optimizer",)
    network_keys = ("encoder", "decoder")
    validates = True

    @classmethod
    def fixed_inputs(cls, cfg, test_images, rng) -> dict:
        from gan_vae_tf import data

        batch = data.pipeline(data.sample(test_images, 8), cfg, training=False, batch_size=8)
        return {
            "z": grid_codes(cfg, rng, cfg.vae.latent_dim),
            "batch": next(iter(batch)).numpy(),
        }

    def renderer(self, fixed: dict):
        from gan_vae_tf import plots

        return plots.vae_renderer(fixed["z"], fixed["batch"])

    def test_metrics(self, cfg, dataset, num: int, iwae_k: int = 0, iwae_images: int = 0) -> dict:
        from gan_vae_tf import data, evaluate

        result = evaluate.evaluate_vae(self, cfg, data.sample(dataset.test, num))
        if iwae_k > 0:
            images = data.sample(dataset.test, iwae_images)
            result["iwae"] = evaluate.iwae(self, cfg, images, iwae_k)
        return result

    @classmethod
    def describe(cls, cfg) -> tuple[str, str]:
        return "VAE", f"{cfg.vae.latent_dim}-d Gaussian with an encoder q(z|x)"

    def networks(self) -> dict[str, keras.Model]:
        return {"encoder": self.encoder, "decoder": self.decoder}

    def _trained_variables(self, name: str) -> list:
        return self.trainable_variables

    def compile(self, vae_optimizer=None, **kwargs):
        super().compile(vae_optimizer=vae_optimizer, **kwargs)

    @classmethod
    def from_run_config(cls, cfg, policy: str = "float32") -> VAE:
        from gan_vae_tf import networks

        vae, nets = cfg.vae, (networks.encoder(cfg, policy), networks.decoder(cfg, policy))
        options = dict(likelihood=vae.likelihood, obs_sigma=vae.obs_sigma)
        return cls(*nets, seed=cfg.train.seed, name="vae", **options)

    @staticmethod
    def run_optimizers(cfg, total_steps: int | None = None) -> dict:
        return {"vae_optimizer": run_adam(cfg.train, total_steps)}

    def encode(self, x, training: bool = False):
        stats = ops.cast(self.encoder(x, training=training), "float32")
        mean, logvar = ops.split(stats, 2, axis=-1)
        return mean, logvar

    def decode(self, z, training: bool = False):
        """Pixel logits; `ops.sigmoid` of them is the mean image in [0, 1]."""
        return ops.cast(self.decoder(z, training=training), "float32")

    def call(self, x, training: bool = False):
        mean, logvar = self.encode(x, training)
        return self.decode(self.sampler(mean, logvar), training)

    def sample(self, n: int):
        """Mean images of decoded prior samples z ~ N(0, I)."""
        z = keras.random.normal((n, self.latent_dim), seed=self.prior_seed)
        return ops.sigmoid(self.decode(z))

    def reconstruct(self, x):
        """Mean images decoded from the posterior means: the deterministic reconstruction."""
        mean, _ = self.encode(x)
        return ops.sigmoid(self.decode(mean))

    def elbo_terms(self, x, training: bool = False):
        """Per-image (elbo, log p(x|z), kl), each float32 of shape (batch,)."""
        mean, logvar = self.encode(x, training)
        logits = self.decode(self.sampler(mean, logvar), training)
        log_px_z = losses.reconstruction_log_prob(x, logits, self.likelihood, self.obs_sigma)
        kl = losses.kl_to_standard_normal(mean, logvar)
        return log_px_z - kl, log_px_z, kl

    def log_importance_weights(self, x, k: int):
        """(batch, k) values of log p(x|z) + log p(z) - log q(z|x) for k draws z ~ q(z|x):
        their log-mean-exp is the IWAE bound, their mean the ELBO."""
        mean, logvar = self.encode(x)
        batch = ops.shape(mean)[0]

        def rep(t):
            return ops.reshape(ops.repeat(t[:, None], k, axis=1), (-1, self.latent_dim))

        mean_k, logvar_k = rep(mean), rep(logvar)
        z = self.sampler(mean_k, logvar_k)
        x_k = ops.repeat(x, k, axis=0)
        log_px_z = losses.reconstruction_log_prob(
            x_k, self.decode(z), self.likelihood, self.obs_sigma
        )
        log_pz = losses.normal_log_prob(z, ops.zeros_like(z), ops.zeros_like(z))
        log_qz = losses.normal_log_prob(z, mean_k, logvar_k)
        return ops.reshape(log_px_z + log_pz - log_qz, (batch, k))

    def train_step(self, x):
        with tf.GradientTape() as tape:
            elbo, log_px_z, kl = self.elbo_terms(x, training=True)
            loss = -ops.mean(elbo)
            scaled = _scaled(self.vae_optimizer, loss)
        self._count_skips(_apply(tape, scaled, self.vae_optimizer, self.trainable_variables))
        return self._track(loss, elbo, log_px_z, kl)

    def test_step(self, x):
        elbo, log_px_z, kl = self.elbo_terms(x, training=False)
        return self._track(-ops.mean(elbo), elbo, log_px_z, kl)

    def _track(self, loss, elbo, log_px_z, kl):
        n = ops.shape(elbo)[0]
        self.trackers["loss"].update_state(loss, sample_weight=n)
        self.trackers["elbo"].update_state(elbo)
        self.trackers["log_px_z"].update_state(log_px_z)
        self.trackers["kl"].update_state(kl)
        return {name: t.result() for name, t in self.trackers.items()}

    def get_config(self):
        return {
            **super().get_config(),
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "decoder": keras.saving.serialize_keras_object(self.decoder),
            "likelihood": self.likelihood,
            "obs_sigma": self.obs_sigma,
            "seed": self.seed,
        }


MODELS: dict[str, type[_CustomTrainer]] = {"gan": DCGAN, "vae": VAE}


def steps_per_execution(cfg) -> int:
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


def build(cfg, policy: str = "float32", steps_per_epoch: int | None = None) -> keras.Model:
    """The compiled model a config describes, with layers under the given dtype policy.
    `steps_per_epoch` (else the config's) sizes a learning-rate decay over the whole run."""
    model = MODELS[cfg.model].from_run_config(cfg, policy)
    per_epoch = steps_per_epoch or cfg.train.steps_per_epoch
    total = cfg.train.epochs * per_epoch if per_epoch else None
    model.compile(
        **model.run_optimizers(cfg, total),
        loss_scale=policy == "mixed_float16",
        steps_per_execution=steps_per_execution(cfg),
    )
    return model
