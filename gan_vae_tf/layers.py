"""Small serializable layers shared by the models."""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops


@keras.saving.register_keras_serializable(package="gan_vae_tf")
class Reparameterize(keras.layers.Layer):
    """z = mean + exp(logvar / 2) * eps with eps ~ N(0, I).

    The noise comes from a `SeedGenerator`, whose state is a variable that advances on every
    call, so a compiled train step draws fresh noise each time instead of a constant baked in
    at trace time. Runs in float32 so the variance never under- or overflows in half precision.
    """

    def __init__(self, seed: int | None = None, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, mean, logvar):
        mean = ops.cast(mean, "float32")
        logvar = ops.cast(logvar, "float32")
        eps = keras.random.normal(ops.shape(mean), seed=self.seed_generator)
        return mean + ops.exp(0.5 * logvar) * eps

    def compute_output_shape(self, mean_shape, logvar_shape):
        return mean_shape

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


@keras.saving.register_keras_serializable(package="gan_vae_tf")
class MixturePrior(keras.layers.Layer):
    """A learned prior p(z): a mixture of `components` diagonal Gaussians over `latent_dim`
    dimensions, its means, log-variances and weight logits trained with the model (the VAE
    computes log p(z) from them with `losses.mixture_log_prob`).

    `call(noise)` turns standard-normal noise with one column more than z into a draw of
    p(z): that last column, through the normal CDF, is a uniform number that picks the
    component by the cumulative weights (inverse-CDF sampling), and the other columns are the
    chosen Gaussian's standardized draw. A draw is a function of its noise, so the same noise
    gives the same z in the per-epoch grid, the Python API and an exported SavedModel.
    Float32 throughout.
    """

    def __init__(self, components: int, latent_dim: int, seed: int | None = None, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.components, self.latent_dim, self.seed = components, latent_dim, seed
        shape = (components, latent_dim)
        # Means drawn from N(0, I) spread the components over the standard prior's volume.
        spread = keras.initializers.RandomNormal(stddev=1.0, seed=seed)
        self.means = self.add_weight(shape, spread, name="means", dtype="float32")
        self.logvars = self.add_weight(shape, "zeros", name="logvars", dtype="float32")
        self.logits = self.add_weight((components,), "zeros", name="logits", dtype="float32")
        self.built = True  # its weights exist now; an export must not wait for a first call

    def call(self, noise):
        noise = ops.cast(noise, "float32")
        eps, pick = noise[:, : self.latent_dim], noise[:, self.latent_dim]
        uniform = 0.5 * (1.0 + ops.erf(pick / ops.sqrt(2.0)))
        edges = ops.cumsum(ops.softmax(self.logits))[:-1]
        component = ops.sum(ops.cast(uniform[:, None] > edges[None, :], "int32"), axis=1)
        mean = ops.take(self.means, component, axis=0)
        return mean + ops.exp(0.5 * ops.take(self.logvars, component, axis=0)) * eps

    def compute_output_shape(self, noise_shape):
        return (noise_shape[0], self.latent_dim)

    def get_config(self):
        return {
            **super().get_config(),
            "components": self.components,
            "latent_dim": self.latent_dim,
            "seed": self.seed,
        }


def _check_phase_form(layer: keras.layers.Layer) -> None:
    """The phase form below is derived for stride 2, 'same' padding and kernels of 3 to 6."""
    k = layer.kernel_size
    if (
        tuple(layer.strides) != (2, 2)
        or layer.padding != "same"
        or k[0] != k[1]
        or not 3 <= k[0] <= 6
        or tuple(layer.dilation_rate) != (1, 1)
        or getattr(layer, "groups", 1) != 1
        or layer.data_format != "channels_last"
    ):
        raise ValueError(
            f"{layer.__class__.__name__} needs strides 2, padding 'same', channels_last, one "
            f"group and a square kernel of 3 to 6; got strides {layer.strides}, padding "
            f"{layer.padding!r}, kernel {k}"
        )


def _even_size(layer: keras.layers.Layer, shape) -> None:
    if any(n is not None and n % 2 for n in shape[1:3]):
        raise ValueError(f"{layer.__class__.__name__} needs an even height and width; got {shape}")


def conv_phase_kernel(kernel: tf.Tensor) -> tf.Tensor:
    """(k, k, C, F) kernel of a stride-2 'same' convolution -> the (3, 3, 4C, F) kernel that
    gives the same output from `space_to_depth(x, 2)` at stride 1.

    Output pixel i reads x[2i + d - p] (d the kernel tap, p = (k - 2) // 2 the padding before).
    Writing 2i + d - p = 2(i + m) + r, input phase r sees tap d = 2m + r + p at offset
    m in {-1, 0, 1}. Zero-padding the taps to 6 and splitting them as (m + 1, r) reads all nine
    offsets at once.
    """
    k, c, f = kernel.shape[0], kernel.shape[2], kernel.shape[3]
    before = 2 - (k - 2) // 2
    taps = tf.pad(kernel, [[before, 6 - before - k]] * 2 + [[0, 0]] * 2)
    phases = tf.transpose(tf.reshape(taps, (3, 2, 3, 2, c, f)), (0, 2, 1, 3, 4, 5))
    return tf.reshape(phases, (3, 3, 4 * c, f))


def transpose_phase_kernel(kernel: tf.Tensor) -> tf.Tensor:
    """(k, k, F, C) kernel of a stride-2 'same' transposed convolution -> the (3, 3, C, 4F)
    kernel of a stride-1 convolution whose output, after `depth_to_space(., 2)`, is the same.

    Output pixel 2q + r (phase r) sums x[q + e] * tap[-2e + r + p] over e in {-1, 0, 1}. With
    the taps flipped and zero-padded to 6, that tap sits at 2(e + 1) + (1 - r).
    """
    k, f, c = kernel.shape[0], kernel.shape[2], kernel.shape[3]
    before = 4 + (k - 2) // 2 - k
    flipped = tf.reverse(kernel, axis=[0, 1])
    taps = tf.pad(flipped, [[before, 6 - before - k]] * 2 + [[0, 0]] * 2)
    split = tf.reverse(tf.reshape(taps, (3, 2, 3, 2, f, c)), axis=[1, 3])
    phases = tf.transpose(split, (0, 2, 5, 1, 3, 4))
    return tf.reshape(phases, (3, 3, c, 4 * f))


@keras.saving.register_keras_serializable(package="gan_vae_tf")
class PixelUnshuffleConv2D(keras.layers.Conv2D):
    """A stride-2 'same' Conv2D computed as space-to-depth, then a 3x3 stride-1 convolution.

    The same function and the same (k, k, C, F) kernel as `Conv2D`, so weights, checkpoints and
    `.keras` files are interchangeable; only the arithmetic differs. A 1-channel 5x5 convolution
    is a poor shape for oneDNN on CPU; 4 channels at 3x3 is a better one (`make profile`,
    `benchmarks/bench_layers.py`).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _check_phase_form(self)

    def build(self, input_shape):
        _even_size(self, input_shape)
        super().build(input_shape)

    def convolution_op(self, inputs, kernel):
        return tf.nn.conv2d(tf.nn.space_to_depth(inputs, 2), conv_phase_kernel(kernel), 1, "SAME")


@keras.saving.register_keras_serializable(package="gan_vae_tf")
class PixelShuffleConv2DTranspose(keras.layers.Conv2DTranspose):
    """A stride-2 'same' Conv2DTranspose computed as a 3x3 stride-1 convolution to 4x the
    channels, then depth-to-space (a sub-pixel convolution).

    The same function and the same (k, k, F, C) kernel as `Conv2DTranspose`: weights,
    checkpoints and `.keras` files are interchangeable.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _check_phase_form(self)
        if self.output_padding is not None:
            raise ValueError(f"{self.__class__.__name__} takes no output_padding")

    def call(self, inputs):
        phases = tf.nn.conv2d(inputs, transpose_phase_kernel(self.kernel), 1, "SAME")
        outputs = tf.nn.depth_to_space(phases, 2)
        if self.use_bias:
            outputs = outputs + self.bias
        return self.activation(outputs) if self.activation is not None else outputs


@keras.saving.register_keras_serializable(package="gan_vae_tf")
class FusedBatchNormalization(keras.layers.BatchNormalization):
    """`BatchNormalization` whose training-mode pass is TensorFlow's fused kernel.

    Keras 3 normalizes with separate moment, subtract and scale ops; the fused kernel does the
    forward pass and its gradient in one op each, which is faster at this package's map sizes
    on CPU (`benchmarks/bench_layers.py`). Same variables, same float32 arithmetic, same moving-average
    update (from the biased batch variance, as Keras does), so weights and files are
    interchangeable with `BatchNormalization`. Inference and masked calls are the parent's.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.axis != -1 or self.renorm or self.synchronized:
            raise ValueError(
                "FusedBatchNormalization normalizes the last axis without renorm or synchronization"
            )

    def call(self, inputs, training=None, mask=None):
        if not (training and self.trainable) or mask is not None:
            return super().call(inputs, training=training, mask=mask)
        channels = inputs.shape[-1]
        x = tf.cast(inputs, "float32")  # gamma, beta and the statistics are float32 already
        x4 = x if x.shape.rank == 4 else tf.reshape(x, (-1, 1, 1, channels))
        y, mean, variance, *_ = tf.raw_ops.FusedBatchNormV3(
            x=x4,
            scale=self.gamma if self.scale else tf.ones((channels,)),
            offset=self.beta if self.center else tf.zeros((channels,)),
            mean=tf.zeros((0,)),
            variance=tf.zeros((0,)),
            epsilon=self.epsilon,
            data_format="NHWC",
            is_training=True,
        )
        n = tf.cast(tf.size(x4) // channels, "float32")
        variance = variance * (n - 1.0) / n  # the kernel returns the unbiased variance
        m = self.momentum
        self.moving_mean.assign(self.moving_mean * m + mean * (1.0 - m))
        self.moving_variance.assign(self.moving_variance * m + variance * (1.0 - m))
        y = y if x.shape.rank == 4 else tf.reshape(y, tf.shape(inputs))
        return tf.cast(y, self.compute_dtype)
