"""`VAE`: a convolutional VAE trained on the single-sample ELBO."""

from __future__ import annotations

import math

import keras
import tensorflow as tf
from keras import ops

from gan_vae_tf import losses
from gan_vae_tf.config import VAEConfig
from gan_vae_tf.layers import MixturePrior, Reparameterize
from gan_vae_tf.models import conditioning, optimizers
from gan_vae_tf.models.base import MultiOptimizerModel


@keras.saving.register_keras_serializable(package="gan_vae_tf")
class VAE(MultiOptimizerModel):
    """A convolutional VAE trained on the negative single-sample Monte-Carlo ELBO.

    ELBO(x) = log p(x | z) - KL(q(z|x) || p(z)) with z ~ q(z|x) drawn once per image. The
    prior p(z) is N(0, I), with the KL in closed form, or, with `prior_components` = K > 0, a
    mixture of K diagonal Gaussians whose means, variances and weights the ELBO trains too
    (Dilokthanakul et al. 2016; Tomczak & Welling 2018): the KL is then the single-sample
    estimate log q(z|x) - log p(z) at the same z, so one image's may be negative. `options` is the run's `VAEConfig`; its
    `likelihood` is "bernoulli" for binary pixels or "gaussian" for continuous pixels in
    [0, 1], with a std `obs_sigma` that is fixed or, with `learn_obs_sigma`, one more weight
    trained on the same ELBO (a calibrated decoder). All in nats.

    With `kl_warmup` = W > 0 the training loss weighs the KL by min(1, t / W) at optimizer
    step t (counted from 0, so a resumed run continues the schedule exactly); the logged and
    evaluated ELBO is always the true one.

    With `classes` > 0 it is a CVAE: batches are (images, labels), and the encoder q(z|x, y) and
    the decoder p(x|z, y) both see the label (`conditioning`); the prior p(z) is every class's.
    """

    optimizer_names = ("vae_optimizer",)
    network_keys = ("encoder", "decoder")
    options_class = VAEConfig

    def __init__(self, encoder: keras.Model, decoder: keras.Model, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.decoder = decoder
        self.latent_dim = int(decoder.input_shape[-1]) - self.options.classes
        self.reparameterize = Reparameterize(seed=self.seed, name="reparameterize")
        self.prior_seed = keras.random.SeedGenerator(None if self.seed is None else self.seed + 1)
        self.trackers = {
            name: keras.metrics.Mean(name=name) for name in ("loss", "elbo", "log_px_z", "kl")
        }
        if self.options.learn_obs_sigma:
            self.log_obs_sigma = self.add_weight(
                shape=(),
                initializer=keras.initializers.Constant(math.log(self.options.obs_sigma)),
                name="log_obs_sigma",
                dtype="float32",
            )
            self.trackers["obs_sigma"] = keras.metrics.Mean(name="obs_sigma")
        if self.options.kl_warmup:
            self.trackers["kl_weight"] = keras.metrics.Mean(name="kl_weight")
        self.prior = (
            MixturePrior(self.options.prior_components, self.latent_dim, self.seed, name="prior")
            if self.options.prior_components
            else None
        )
        self.built = True

    @property
    def obs_sigma(self):
        """The Gaussian likelihood's std: the learned one, or the fixed option."""
        if self.options.learn_obs_sigma:
            return ops.exp(self.log_obs_sigma)
        return self.options.obs_sigma

    def kl_weight(self):
        """The KL's weight in the training loss at the optimizer's current step."""
        if not self.options.kl_warmup:
            return 1.0  # a Python number: the loss is then the ELBO itself
        step = ops.cast(self.vae_optimizer.iterations, "float32")
        return ops.minimum(1.0, step / float(self.options.kl_warmup))

    def networks(self) -> dict[str, keras.Model]:
        return {"encoder": self.encoder, "decoder": self.decoder}

    def _trained_variables(self, name: str) -> list:
        return self.trainable_variables

    def compile(self, vae_optimizer=None, **kwargs):
        super().compile(vae_optimizer=vae_optimizer, **kwargs)

    def _needs(self, labels) -> None:
        if self.options.classes and labels is None:
            raise ValueError("a CVAE encodes and decodes for labels: give labels")

    def encode(self, x, labels=None, training: bool = False):
        """(mean, log-variance) of q(z|x) (of q(z|x, y) with labels), float32."""
        self._needs(labels)
        shown = conditioning.image_net_input(
            x, labels, self.options.classes, self.options.encoder_label
        )
        stats = ops.cast(self.encoder(shown, training=training), "float32")
        mean, logvar = ops.split(stats, 2, axis=-1)
        return mean, logvar

    def decode(self, z, labels=None, training: bool = False):
        """Pixel logits; `ops.sigmoid` of them is the mean image in [0, 1]."""
        self._needs(labels)
        codes = conditioning.with_label_code(z, labels, self.options.classes)
        return ops.cast(self.decoder(codes, training=training), "float32")

    def call(self, x, labels=None, training: bool = False):
        mean, logvar = self.encode(x, labels, training)
        return self.decode(self.reparameterize(mean, logvar), labels, training)

    @property
    def noise_size(self) -> int:
        """The width of the standard-normal noise a prior draw is made from: z's, and one
        more column that picks a mixture prior's component."""
        return self.latent_dim + (1 if self.prior is not None else 0)

    def prior_codes(self, noise):
        """Draws z ~ p(z) as a function of standard-normal noise (n, noise_size), float32."""
        noise = ops.cast(noise, "float32")
        return noise if self.prior is None else self.prior(noise)

    def log_prior(self, z):
        """log p(z) per row, float32."""
        if self.prior is None:
            return losses.normal_log_prob(z, ops.zeros_like(z), ops.zeros_like(z))
        p = self.prior
        return losses.mixture_log_prob(z, p.means, p.logvars, p.logits)

    def kl(self, z, mean, logvar):
        """KL(q(z|x) || p(z)) per image: in closed form for N(0, I), else estimated at z."""
        if self.prior is None:
            return losses.kl_to_standard_normal(mean, logvar)
        return losses.normal_log_prob(z, mean, logvar) - self.log_prior(z)

    def sample(self, n: int, labels=None):
        """Mean images of decoded prior samples z ~ p(z); a CVAE's for `labels` (uniform over
        the classes when None)."""
        z = self.prior_codes(keras.random.normal((n, self.noise_size), seed=self.prior_seed))
        if self.options.classes and labels is None:
            labels = keras.random.randint((n,), 0, self.options.classes, seed=self.prior_seed)
        return ops.sigmoid(self.decode(z, labels))

    def reconstruct(self, x, labels=None):
        """Mean images decoded from the posterior means: the deterministic reconstruction."""
        mean, _ = self.encode(x, labels)
        return ops.sigmoid(self.decode(mean, labels))

    def elbo_terms(self, x, labels=None, training: bool = False):
        """Per-image (elbo, log p(x|z), kl), each float32 of shape (batch,); a CVAE's
        conditioned on the images' labels."""
        mean, logvar = self.encode(x, labels, training)
        z = self.reparameterize(mean, logvar)
        logits = self.decode(z, labels, training)
        log_px_z = losses.reconstruction_log_prob(
            x, logits, self.options.likelihood, self.obs_sigma
        )
        kl = self.kl(z, mean, logvar)
        return log_px_z - kl, log_px_z, kl

    def log_importance_weights(self, x, k: int, labels=None):
        """(batch, k) values of log p(x|z) + log p(z) - log q(z|x) for k draws z ~ q(z|x):
        their log-mean-exp is the IWAE bound, their mean the ELBO."""
        mean, logvar = self.encode(x, labels)
        batch = ops.shape(mean)[0]

        def rep(t):
            return ops.reshape(ops.repeat(t[:, None], k, axis=1), (-1, self.latent_dim))

        mean_k, logvar_k = rep(mean), rep(logvar)
        z = self.reparameterize(mean_k, logvar_k)
        x_k = ops.repeat(x, k, axis=0)
        labels_k = None if labels is None else ops.repeat(labels, k, axis=0)
        log_px_z = losses.reconstruction_log_prob(
            x_k, self.decode(z, labels_k), self.options.likelihood, self.obs_sigma
        )
        log_pz = self.log_prior(z)
        log_qz = losses.normal_log_prob(z, mean_k, logvar_k)
        return ops.reshape(log_px_z + log_pz - log_qz, (batch, k))

    def _unpack(self, data):
        """(images, labels) of a batch: labels only for a CVAE."""
        return (data[0], data[1]) if self.options.classes else (data, None)

    def train_step(self, data):
        x, labels = self._unpack(data)
        kl_weight = self.kl_weight()
        with tf.GradientTape() as tape:
            elbo, log_px_z, kl = self.elbo_terms(x, labels, training=True)
            objective = log_px_z - kl_weight * kl if self.options.kl_warmup else elbo
            loss = -ops.mean(objective)
            scaled = optimizers.scaled_loss(self.vae_optimizer, loss)
        self._count_skips(
            optimizers.apply_loss(tape, scaled, self.vae_optimizer, self.trainable_variables)
        )
        if "kl_weight" in self.trackers:
            self.trackers["kl_weight"].update_state(kl_weight)
        return self._track(loss, elbo, log_px_z, kl)

    def test_step(self, data):
        x, labels = self._unpack(data)
        elbo, log_px_z, kl = self.elbo_terms(x, labels, training=False)
        return self._track(-ops.mean(elbo), elbo, log_px_z, kl)

    def _track(self, loss, elbo, log_px_z, kl):
        n = ops.shape(elbo)[0]
        self.trackers["loss"].update_state(loss, sample_weight=n)
        self.trackers["elbo"].update_state(elbo)
        self.trackers["log_px_z"].update_state(log_px_z)
        self.trackers["kl"].update_state(kl)
        if "obs_sigma" in self.trackers:
            self.trackers["obs_sigma"].update_state(self.obs_sigma)
        return {name: t.result() for name, t in self.trackers.items()}
