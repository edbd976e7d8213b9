"""The four networks, built from the config's image shape and widths.

One builder per network serves both 28x28x1 digits and 64x64x3 faces. Hidden layers use the
run's dtype policy (e.g. `mixed_bfloat16`); every network's last layer produces float32, so
logits and activations that feed losses never live in half precision.
"""

from __future__ import annotations

import math

import keras
from keras import layers

from gan_vae_tf import layers as own_layers
from gan_vae_tf.config import PLANES, Config, GANConfig


def _activation(name: str, slope: float, policy: str) -> layers.Layer:
    if name == "leaky_relu":
        return layers.LeakyReLU(negative_slope=slope, dtype=policy)
    return layers.Activation(name, dtype=policy)


def _batchnorm(g: GANConfig, policy: str) -> layers.Layer:
    kind = own_layers.FusedBatchNormalization if g.fused_batchnorm else layers.BatchNormalization
    return kind(dtype=policy)


def generator(cfg: Config, policy: str = "float32") -> keras.Sequential:
    """Noise -> Dense to a small map -> Conv2DTranspose stack -> tanh image in [-1, 1].

    DCGAN-64's first 4x4 transposed convolution of a 1x1 noise map is the same linear map as
    this Dense projection, so both reports' generators fit one builder. A class-conditional
    generator takes the noise with the label's one-hot code after it (`gan.classes` more
    inputs); the model puts it there.
    """
    g, (size, _, channels) = cfg.gan, cfg.image_shape
    base = size // math.prod(g.gen_strides)
    stack = [
        keras.Input((g.noise_dim + g.classes,)),
        layers.Dense(base * base * g.gen_base_width, use_bias=False, dtype=policy),
        _batchnorm(g, policy),
        _activation(g.gen_activation, g.leaky_slope, policy),
        layers.Reshape((base, base, g.gen_base_width), dtype=policy),
    ]
    for width, stride in zip(g.gen_widths, g.gen_strides[:-1], strict=True):
        stack += [
            layers.Conv2DTranspose(
                width, g.kernel_size, stride, padding="same", use_bias=False, dtype=policy
            ),
            _batchnorm(g, policy),
            _activation(g.gen_activation, g.leaky_slope, policy),
        ]
    last = own_layers.PixelShuffleConv2DTranspose if g.pixel_shuffle else layers.Conv2DTranspose
    stack += [
        last(channels, g.kernel_size, g.gen_strides[-1], padding="same", dtype=policy),
        layers.Activation("tanh", dtype="float32"),
    ]
    return keras.Sequential(stack, name="generator")


def discriminator(cfg: Config, policy: str = "float32") -> keras.Model:
    """Image -> stride-2 Conv2D stack -> one float32 logit.

    DCGAN-64's final 4x4 valid convolution over a 4x4 map equals this Flatten + Dense(1). A
    class-conditional discriminator sees the label as `gan.classes` more channels, one-hot
    planes after the image's own, or with `gan.disc_label="projection"` as a second input
    projected onto its features (`_projection`).
    """
    g = cfg.gan

    def weighted(layer: layers.Layer) -> layers.Layer:
        # float32: the wrapper's power iteration and its W / sigma write into the float32
        # kernel would otherwise run (and round) in half precision; the layer keeps `policy`.
        return (
            layers.SpectralNormalization(layer, dtype="float32") if g.disc_spectral_norm else layer
        )

    body: list = []
    for i, width in enumerate(g.disc_widths):
        first = own_layers.PixelUnshuffleConv2D if g.pixel_shuffle and i == 0 else layers.Conv2D
        body.append(
            weighted(
                first(
                    width,
                    g.kernel_size,
                    2,
                    padding="same",
                    use_bias=not (g.disc_batchnorm and i > 0),
                    dtype=policy,
                )
            )
        )
        if g.disc_batchnorm and i > 0:
            body.append(_batchnorm(g, policy))
        body.append(layers.LeakyReLU(negative_slope=g.leaky_slope, dtype=policy))
        if g.disc_dropout:
            body.append(layers.Dropout(g.disc_dropout, dtype=policy))
    body.append(layers.Flatten(dtype=policy))
    head = weighted(layers.Dense(1, dtype="float32"))
    label = (g.classes, g.disc_label)
    return _image_reader("discriminator", cfg, body, head, label, _projection(weighted))


def _projection(weighted):
    """The projection discriminator's join (Miyato & Koyama, 2018): logit = head(f) + <e_y, f>,
    with f the image's features and e_y a learned embedding of its label."""

    def join(features, one_hot, head):
        embedding = weighted(
            layers.Dense(
                features.shape[-1], use_bias=False, dtype="float32", name="label_embedding"
            )
        )(one_hot)
        match = layers.Dot(axes=1, dtype="float32")([embedding, features])
        return layers.Add(dtype="float32")([head(features), match])

    return join


def _image_reader(
    name: str, cfg: Config, body: list, head: layers.Layer, label: tuple[int, str], join
) -> keras.Model:
    """A network that reads images: `body` (the convolutions, then Flatten), then `head`.
    `label` is (classes, how the label is taken). Unconditional, or shown the label as planes
    (`classes` more input channels), it is a Sequential. Otherwise it takes [image, one-hot
    label] and returns `join(features, one_hot, head)`: the label met once, after the
    convolutions, which then cost what an unconditional network's do."""
    size, _, channels = cfg.image_shape
    classes, label_input = label
    late = classes and label_input != PLANES
    image = keras.Input((size, size, channels + (0 if late else classes)))
    if not late:
        return keras.Sequential([image, *body, head], name=name)
    one_hot = keras.Input((classes,), name="label")
    features = image
    for layer in body:
        features = layer(features)
    return keras.Model([image, one_hot], join(features, one_hot, head), name=name)


def _vae_block(conv, width: int, v, policy: str) -> list:
    """One stride-2 step of the VAE's encoder (Conv2D) or decoder (Conv2DTranspose): the
    convolution, batch norm when configured (then the bias is redundant), the activation."""
    block = [conv(width, v.kernel_size, 2, padding="same", use_bias=not v.batchnorm, dtype=policy)]
    if v.batchnorm:
        block.append(layers.BatchNormalization(dtype=policy))
    return [*block, _activation(v.activation, 0.2, policy)]


def encoder(cfg: Config, policy: str = "float32") -> keras.Model:
    """Image -> stride-2 Conv2D stack -> [mean, logvar] of q(z|x), float32, concatenated. A
    CVAE's encoder sees the label as `vae.classes` one-hot planes after the image's channels,
    or with `vae.encoder_label="features"` as a second input joined to the flattened features
    that the last layer reads."""
    v = cfg.vae
    body: list = []
    for width in v.encoder_widths:
        body += _vae_block(layers.Conv2D, width, v, policy)
    body.append(layers.Flatten(dtype=policy))

    def read_label(features, one_hot, head):
        return head(layers.Concatenate(dtype=policy)([features, one_hot]))

    head = layers.Dense(2 * v.latent_dim, dtype="float32")
    return _image_reader("encoder", cfg, body, head, (v.classes, v.encoder_label), read_label)


def decoder(cfg: Config, policy: str = "float32") -> keras.Sequential:
    """z -> Dense to a small map -> stride-2 Conv2DTranspose stack -> float32 pixel logits. A
    CVAE's decoder takes z with the label's one-hot code after it."""
    v, (size, _, channels) = cfg.vae, cfg.image_shape
    base = size // 2 ** len(v.decoder_widths)
    stack: list = [
        keras.Input((v.latent_dim + v.classes,)),
        layers.Dense(base * base * v.decoder_base_width, dtype=policy),
        _activation(v.activation, 0.2, policy),
        layers.Reshape((base, base, v.decoder_base_width), dtype=policy),
    ]
    for width in v.decoder_widths:
        stack += _vae_block(layers.Conv2DTranspose, width, v, policy)
    stack.append(
        layers.Conv2DTranspose(channels, v.kernel_size, 1, padding="same", dtype="float32")
    )
    return keras.Sequential(stack, name="decoder")
