"""The faster forms of the GAN's layers compute the same functions as the Keras layers they
replace, with the same weights, and fail clearly where their derivation does not hold."""

from dataclasses import replace

import keras
import numpy as np
import pytest
import tensorflow as tf

from gan_vae_tf import config as config_lib
from gan_vae_tf import networks
from gan_vae_tf.errors import UserError
from gan_vae_tf.layers import (
    FusedBatchNormalization,
    PixelShuffleConv2DTranspose,
    PixelUnshuffleConv2D,
)


def _outputs_and_gradients(layer, x, weights, **call):
    """The layer's output and the gradients of a fixed random projection of it with respect to
    the input and every trainable weight."""
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, **call)
        loss = tf.reduce_sum(y * weights)
    return [y, *tape.gradient(loss, [x, *layer.trainable_variables])]


def _assert_same_function(reference, fast, x, **call):
    reference.build(x.shape)
    fast.build(x.shape)
    rng = np.random.default_rng(1)
    for w in reference.weights:  # a nonzero bias too, so a misplaced bias would show
        w.assign(rng.standard_normal(w.shape).astype("float32"))
    fast.set_weights(reference.get_weights())
    weights = rng.standard_normal(reference.compute_output_shape(x.shape)).astype("float32")
    expected = _outputs_and_gradients(reference, x, weights, **call)
    got = _outputs_and_gradients(fast, x, weights, **call)
    assert len(got) == len(expected)
    for a, b in zip(expected, got, strict=True):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-4, atol=1e-4)
    return fast


@pytest.mark.parametrize("kernel", [3, 4, 5, 6])
@pytest.mark.parametrize("channels, filters", [(1, 8), (3, 5)])
def test_pixel_unshuffle_conv_is_the_stride_2_same_conv2d_with_its_gradients(
    kernel, channels, filters
):
    x = np.random.default_rng(0).standard_normal((2, 8, 10, channels)).astype("float32")
    _assert_same_function(
        keras.layers.Conv2D(filters, kernel, 2, padding="same"),
        PixelUnshuffleConv2D(filters, kernel, 2, padding="same"),
        x,
    )


@pytest.mark.parametrize("kernel", [3, 4, 5, 6])
@pytest.mark.parametrize("channels, filters", [(8, 1), (5, 3)])
def test_pixel_shuffle_transpose_is_the_stride_2_same_conv2d_transpose_with_its_gradients(
    kernel, channels, filters
):
    x = np.random.default_rng(0).standard_normal((2, 4, 5, channels)).astype("float32")
    fast = _assert_same_function(
        keras.layers.Conv2DTranspose(filters, kernel, 2, padding="same"),
        PixelShuffleConv2DTranspose(filters, kernel, 2, padding="same"),
        x,
    )
    assert fast(x).shape == (2, 8, 10, filters)


@pytest.mark.parametrize(
    "make",
    [
        lambda: PixelUnshuffleConv2D(4, 5, 1, padding="same"),
        lambda: PixelUnshuffleConv2D(4, 5, 2, padding="valid"),
        lambda: PixelUnshuffleConv2D(4, 7, 2, padding="same"),
        lambda: PixelUnshuffleConv2D(4, 5, 2, padding="same", groups=2),
        lambda: PixelShuffleConv2DTranspose(4, 5, 2, padding="same", output_padding=1),
    ],
)
def test_phase_forms_refuse_what_their_derivation_does_not_cover(make):
    with pytest.raises(ValueError, match="stride|output_padding"):
        make()


def test_pixel_unshuffle_conv_refuses_an_odd_input_size():
    with pytest.raises(ValueError, match="even"):
        PixelUnshuffleConv2D(4, 5, 2, padding="same").build((None, 7, 8, 1))


@pytest.mark.parametrize("shape", [(16, 12), (4, 5, 6, 7)])
def test_fused_batchnorm_trains_like_keras_batchnorm_moving_statistics_included(shape):
    x = (np.random.default_rng(0).standard_normal(shape) * 3 + 1).astype("float32")
    reference, fused = keras.layers.BatchNormalization(), FusedBatchNormalization()
    _assert_same_function(reference, fused, x, training=True)
    for a, b in zip(reference.non_trainable_weights, fused.non_trainable_weights, strict=True):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fused(x).numpy(), reference(x).numpy(), rtol=1e-5, atol=1e-5)


def test_fused_batchnorm_under_mixed_bfloat16_normalizes_in_float32_and_returns_bfloat16():
    x = np.random.default_rng(0).standard_normal((8, 4, 4, 3)).astype("float32")
    reference = keras.layers.BatchNormalization(dtype="mixed_bfloat16")
    fused = FusedBatchNormalization(dtype="mixed_bfloat16")
    for layer in (reference, fused):
        layer.build(x.shape)
    y_ref, y = reference(x, training=True), fused(x, training=True)
    assert y.dtype == tf.bfloat16
    np.testing.assert_allclose(
        tf.cast(y, "float32").numpy(), tf.cast(y_ref, "float32").numpy(), atol=2e-2
    )
    np.testing.assert_allclose(fused.moving_mean.numpy(), reference.moving_mean.numpy(), atol=1e-6)


def test_fused_batchnorm_refuses_options_the_fused_kernel_does_not_have():
    with pytest.raises(ValueError, match="renorm"):
        FusedBatchNormalization(renorm=True)


def test_the_fast_gan_mnist_networks_take_the_plain_ones_weights_and_give_their_outputs():
    fast = config_lib.preset("gan-mnist")
    assert fast.gan.pixel_shuffle and fast.gan.fused_batchnorm
    plain = replace(fast, gan=replace(fast.gan, pixel_shuffle=False, fused_batchnorm=False))
    rng = np.random.default_rng(0)
    inputs = {
        networks.generator: rng.standard_normal((4, 100)).astype("float32"),
        networks.discriminator: rng.uniform(-1, 1, (4, 28, 28, 1)).astype("float32"),
    }
    for build, x in inputs.items():
        a, b = build(plain), build(fast)
        assert [type(layer) for layer in a.layers] != [type(layer) for layer in b.layers]
        b.set_weights(a.get_weights())
        for training in (False, True):
            np.testing.assert_allclose(
                b(x, training=training).numpy(),
                a(x, training=training).numpy(),
                rtol=1e-4,
                atol=1e-5,
            )


def test_a_network_with_the_fast_layers_round_trips_through_a_keras_file(tmp_path):
    cfg = config_lib.preset("gan-mnist")
    gen = networks.generator(cfg)
    gen.save(tmp_path / "g.keras")
    again = keras.saving.load_model(tmp_path / "g.keras")
    assert [type(x) for x in again.layers] == [type(x) for x in gen.layers]
    noise = np.random.default_rng(0).standard_normal((3, 100)).astype("float32")
    np.testing.assert_allclose(again(noise).numpy(), gen(noise).numpy(), atol=1e-6)


def test_pixel_shuffle_needs_a_stride_2_output_layer():
    with pytest.raises(UserError, match="pixel_shuffle"):
        config_lib.override(config_lib.preset("gan-mnist"), ["gan.gen_strides=1,2,1"])
