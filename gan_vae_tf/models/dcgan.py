"""`DCGAN`: a generator and a discriminator trained together, with a generator EMA and R1."""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

from gan_vae_tf import losses
from gan_vae_tf.config import GANConfig
from gan_vae_tf.models import conditioning, optimizers
from gan_vae_tf.models.base import MultiOptimizerModel


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
class DCGAN(MultiOptimizerModel):
    """A generator and a discriminator trained together with the non-saturating BCE losses.

    `options` is the run's `GANConfig`; the model reads its training options (the rest sizes
    the networks it is given). With `ema_decay` > 0 it also keeps `generator_ema`, an
    exponential moving average of every generator weight (batch-norm statistics included),
    updated inside the compiled train step: averaged weights give smoother, steadier samples
    than the last step's. `label_smoothing` is one-sided: the discriminator's target for real
    images is 1 - label_smoothing.

    With `classes` > 0 the model is class-conditional: training batches are (images, labels),
    the generator draws each fake for the label of the real image beside it in the batch, and
    both networks see the label (`conditioning`).
    """

    optimizer_names = ("g_optimizer", "d_optimizer")
    network_keys = ("generator", "discriminator", "generator_ema")
    options_class = GANConfig

    def __init__(
        self,
        generator: keras.Model,
        discriminator: keras.Model,
        generator_ema: keras.Model | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.generator = generator
        self.discriminator = discriminator
        self.noise_dim = int(generator.input_shape[-1]) - self.options.classes
        self.seed_generator = keras.random.SeedGenerator(self.seed)
        keep_average = self.options.ema_decay > 0
        if keep_average and generator_ema is None:
            generator_ema = copy_network(generator, "generator_ema")
        self.generator_ema = generator_ema if keep_average else None
        if self.generator_ema is not None:
            self.generator_ema.trainable = False  # moved by _update_ema, never by an optimizer
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

    @property
    def default_generator(self) -> str:
        """ "ema" when the model keeps an average and its options sample it, else "raw"."""
        kept = self.generator_ema is not None
        return "ema" if kept and self.options.sample_with_ema else "raw"

    def generator_for(self, which: str | None = None) -> keras.Model:
        """The network that makes samples: "ema" (the moving average), "raw" (the trained
        generator), or None for `default_generator`."""
        which = which or self.default_generator
        if which == "raw":
            return self.generator
        if which == "ema" and self.generator_ema is not None:
            return self.generator_ema
        if which == "ema":
            raise ValueError("this DCGAN keeps no EMA generator (gan.ema_decay is 0)")
        raise ValueError(f"generator must be 'ema' or 'raw', got {which!r}")

    def sample_noise(self, n: int):
        return keras.random.normal((n, self.noise_dim), seed=self.seed_generator)

    def sample_labels(self, n: int):
        """n labels drawn uniformly from the classes (for samples no label was asked for)."""
        return keras.random.randint((n,), 0, self.options.classes, seed=self.seed_generator)

    def generate(self, noise, labels=None, training: bool = False, net=None):
        """Images in [-1, 1] from noise (and, when conditional, labels) by `net` (default:
        the trained generator)."""
        if self.options.classes and labels is None:
            raise ValueError("a class-conditional DCGAN draws images for labels: give labels")
        codes = conditioning.with_label_code(noise, labels, self.options.classes)
        return (net or self.generator)(codes, training=training)

    def discriminate(self, images, labels=None, training: bool = False):
        """The discriminator's float32 logits for images (and, when conditional, labels)."""
        shown = conditioning.image_net_input(
            images, labels, self.options.classes, self.options.disc_label
        )
        return self.discriminator(shown, training=training)

    def call(self, noise, labels=None, training: bool = False):
        return self.generate(noise, labels, training, self.generator_for())

    def sample(self, n: int, generator: str | None = None, labels=None):
        """n generated images in [0, 1] (the same range as `VAE.sample`) from the generator
        `generator_for(generator)` names; a conditional model's for `labels` (uniform when
        None)."""
        if self.options.classes and labels is None:
            labels = self.sample_labels(n)
        net = self.generator_for(generator)
        return (self.generate(self.sample_noise(n), labels, False, net) + 1.0) / 2.0

    def _unpack(self, data):
        """(images, labels) of a batch: labels only for a conditional model."""
        return (data[0], data[1]) if self.options.classes else (data, None)

    def _update_ema(self) -> None:
        update_average(
            self.generator_ema, self.generator, self.options.ema_decay, self.g_optimizer.iterations
        )

    def _real_logits_and_r1(self, real, labels=None):
        """D's logits on real images and the R1 penalty, the mean squared norm of D's gradient
        at them. The inner tape lets the caller's tape differentiate the penalty too; under
        mixed_float16 its backward pass runs at the discriminator optimizer's loss scale, so
        small input gradients do not flush to zero in float16."""
        real = ops.cast(real, "float32")
        scale = optimizers.loss_scale(self.d_optimizer)
        with tf.GradientTape() as tape:
            tape.watch(real)
            real_logits = self.discriminate(real, labels, training=True)
            total = ops.sum(ops.cast(real_logits, "float32")) * scale
        return real_logits, losses.gradient_penalty(tape.gradient(total, real) / scale)

    def _real_logits_and_penalty(self, real, labels):
        """D's logits on real images and the weighted R1 penalty, gamma / 2 times R1, when it
        is due on every step; else 0 (no R1, or lazy R1, which `_lazy_r1_gradients` adds)."""
        gamma, every = self.options.r1_gamma, self.options.r1_every
        if not gamma or every > 1:
            return self.discriminate(real, labels, training=True), 0.0
        real_logits, r1 = self._real_logits_and_r1(real, labels)
        return real_logits, 0.5 * gamma * r1

    def _lazy_r1_gradients(self, real, labels, variables) -> list:
        """Lazy R1 (StyleGAN2's lazy regularization): on every `r1_every`-th discriminator
        step, the gradients of the penalty at `r1_every` times its weight, so its mean pull is
        unchanged; zeros on the steps between. Taken in a `tf.cond` of their own, apart from
        the BCE's tape: differentiating through a cond that also held the real-image pass
        would make every step run that pass's input gradient, which nothing uses, and
        zero-fill the skipped branch's intermediates. The due step makes its own pass over the
        real batch: a discriminator with batch norm updates its moving statistics once more,
        one with dropout draws another mask."""
        gamma, every = self.options.r1_gamma, self.options.r1_every

        def due():
            with tf.GradientTape() as tape:
                _, r1 = self._real_logits_and_r1(real, labels)
                penalty = optimizers.scaled_loss(self.d_optimizer, 0.5 * gamma * every * r1)
            grads = tape.gradient(penalty, variables)  # None for a weight R1 ignores (a bias)
            pairs = zip(grads, variables, strict=True)
            return [ops.zeros_like(v) if g is None else g for g, v in pairs]

        def not_due():
            return [ops.zeros_like(v) for v in variables]

        return tf.cond(ops.equal(self.d_optimizer.iterations % every, 0), due, not_due)

    def _update_discriminator(self, tape, scaled_loss, real, labels):
        """One discriminator update from its BCE (and R1) tape, plus lazy R1's gradients."""
        variables = self.discriminator.trainable_variables
        grads = tape.gradient(scaled_loss, variables)
        if self.options.r1_gamma and self.options.r1_every > 1:
            lazy = self._lazy_r1_gradients(real, labels, variables)
            grads = [g + r for g, r in zip(grads, lazy, strict=True)]
        return optimizers.apply_gradients(grads, self.d_optimizer, variables)

    def _discriminator_loss(self, real, fake, labels=None):
        """(BCE loss, weighted R1 penalty, real logits, fake logits) of the discriminator on one
        real and one generated batch. The penalty is kept apart from the loss it is trained
        with so the logged `d_loss` is the same BCE that `test_step` reports, and stays finite
        when a float16 step overflows."""
        real_logits, penalty = self._real_logits_and_penalty(real, labels)
        fake_logits = self.discriminate(fake, labels, training=True)
        loss = losses.discriminator_loss(
            real_logits, fake_logits, real_label=1.0 - self.options.label_smoothing
        )
        return loss, penalty, real_logits, fake_logits

    def train_step(self, data):
        """One update of each network from one generated batch, in the order the options say."""
        real, labels = self._unpack(data)
        noise = self.sample_noise(ops.shape(real)[0])
        step = self._alternating_step if self.options.alternating else self._simultaneous_step
        d_loss, g_loss, real_logits, fake_logits = step(real, labels, noise)
        if self.generator_ema is not None:
            self._update_ema()
        return self._track(d_loss, g_loss, real_logits, fake_logits)

    def _simultaneous_step(self, real, labels, noise):
        """Both losses from the same discriminator pass: the generator is updated, then the
        discriminator."""
        with tf.GradientTape() as g_tape:
            fake = self.generate(noise, labels, training=True)
            with tf.GradientTape() as d_tape:
                d_loss, penalty, real_logits, fake_logits = self._discriminator_loss(
                    real, fake, labels
                )
                d_scaled = optimizers.scaled_loss(self.d_optimizer, d_loss + penalty)
            g_loss = losses.generator_loss(fake_logits)
            g_scaled = optimizers.scaled_loss(self.g_optimizer, g_loss)
        g_skipped = self._update_generator(g_tape, g_scaled)
        d_skipped = self._update_discriminator(d_tape, d_scaled, real, labels)
        self._count_skips(g_skipped, d_skipped)
        return d_loss, g_loss, real_logits, fake_logits

    def _alternating_step(self, real, labels, noise):
        """The discriminator is updated first, and the generator's loss is taken from the
        updated discriminator: one more pass over the fakes, no second generator pass."""
        with tf.GradientTape() as g_tape:
            fake = self.generate(noise, labels, training=True)
            with tf.GradientTape() as d_tape:
                d_loss, penalty, real_logits, fake_logits = self._discriminator_loss(
                    real, fake, labels
                )
                d_scaled = optimizers.scaled_loss(self.d_optimizer, d_loss + penalty)
            with g_tape.stop_recording():
                d_skipped = self._update_discriminator(d_tape, d_scaled, real, labels)
            g_loss = losses.generator_loss(self.discriminate(fake, labels, training=True))
            g_scaled = optimizers.scaled_loss(self.g_optimizer, g_loss)
        g_skipped = self._update_generator(g_tape, g_scaled)
        self._count_skips(g_skipped, d_skipped)
        return d_loss, g_loss, real_logits, fake_logits

    def _update_generator(self, tape, scaled_loss):
        variables = self.generator.trainable_variables
        return optimizers.apply_loss(tape, scaled_loss, self.g_optimizer, variables)

    def test_step(self, data):
        real, labels = self._unpack(data)
        fake = self.generate(
            self.sample_noise(ops.shape(real)[0]), labels, False, self.generator_for()
        )
        real_logits = self.discriminate(real, labels)
        fake_logits = self.discriminate(fake, labels)
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
