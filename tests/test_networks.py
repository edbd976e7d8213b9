import keras
import numpy as np
import pytest

from gan_vae_tf import config as config_lib
from gan_vae_tf import networks
from helpers import tiny_config


@pytest.mark.parametrize("preset, shape", [("gan-mnist", (28, 28, 1)), ("gan-anime", (64, 64, 3))])
def test_generator_makes_images_in_tanh_range_and_discriminator_one_logit(preset, shape):
    cfg = config_lib.preset(preset)
    gen, disc = networks.generator(cfg), networks.discriminator(cfg)
    images = gen(np.random.default_rng(0).standard_normal((2, 100)).astype("float32")).numpy()
    assert images.shape == (2, *shape) and images.dtype == np.float32
    assert np.abs(images).max() <= 1.0
    assert disc(images).shape == (2, 1)


@pytest.mark.parametrize(
    "preset, shape, latent",
    [
        ("vae-mnist", (28, 28, 1), 16),
        ("vae-mnist-report", (28, 28, 1), 2),
        ("vae-anime", (64, 64, 3), 128),
    ],
)
def test_encoder_gives_mean_and_logvar_and_decoder_gives_image_logits(preset, shape, latent):
    cfg = config_lib.preset(preset)
    enc, dec = networks.encoder(cfg), networks.decoder(cfg)
    assert enc(np.zeros((2, *shape), "float32")).shape == (2, 2 * latent)
    assert dec(np.zeros((2, latent), "float32")).shape == (2, *shape)


def test_mnist_networks_follow_the_tutorial_layouts():
    cfg = config_lib.preset("gan-mnist-report")
    gen = networks.generator(cfg)
    transposed = [layer for layer in gen.layers if layer.__class__.__name__ == "Conv2DTranspose"]
    assert [(layer.filters, layer.strides, layer.kernel_size) for layer in transposed] == [
        (128, (1, 1), (5, 5)),
        (64, (2, 2), (5, 5)),
        (1, (2, 2), (5, 5)),
    ]
    assert gen.layers[0].units == 7 * 7 * 256
    vae = config_lib.preset("vae-mnist")
    enc = networks.encoder(vae)
    convs = [layer for layer in enc.layers if layer.__class__.__name__ == "Conv2D"]
    assert [(layer.filters, layer.strides) for layer in convs] == [(32, (2, 2)), (64, (2, 2))]
    assert networks.decoder(vae).layers[0].units == 7 * 7 * 32


def test_dcgan64_maps_match_the_report():
    cfg = config_lib.preset("gan-anime-report")
    gen, disc = networks.generator(cfg), networks.discriminator(cfg)
    shapes = [
        layer.output.shape[1:]
        for layer in gen.layers
        if layer.__class__.__name__ == "Conv2DTranspose"
    ]
    assert [tuple(s) for s in shapes] == [(8, 8, 256), (16, 16, 128), (32, 32, 64), (64, 64, 3)]
    assert gen.layers[3].output.shape[1:] == (4, 4, 512)
    convs = [layer for layer in disc.layers if layer.__class__.__name__ == "Conv2D"]
    assert [tuple(layer.output.shape[1:]) for layer in convs] == [
        (32, 32, 64),
        (16, 16, 128),
        (8, 8, 256),
        (4, 4, 512),
    ]


@pytest.mark.parametrize("preset", list(config_lib.PRESETS))
def test_half_precision_networks_end_in_float32(preset):
    cfg = tiny_config(preset)
    builders = (
        (networks.generator, networks.discriminator)
        if cfg.model == "gan"
        else (networks.encoder, networks.decoder)
    )
    for build in builders:
        net = build(cfg, "mixed_bfloat16")
        hidden = [layer for layer in net.layers if not isinstance(layer, keras.layers.InputLayer)]
        assert hidden[0].compute_dtype == "bfloat16"
        assert net.layers[-1].compute_dtype == "float32"
        assert all(v.dtype == "float32" for v in net.weights)


@pytest.mark.parametrize(
    ("preset", "change"), [("cgan-mnist", "gan.disc_label"), ("cvae-mnist", "vae.encoder_label")]
)
def test_every_way_to_read_the_label_keeps_float32_outputs_under_half_precision(preset, change):
    for value in config_lib.LABEL_INPUTS[change]:
        cfg = config_lib.override(tiny_config(preset), [f"{change}={value}"])
        build = networks.discriminator if cfg.model == "gan" else networks.encoder
        net = build(cfg, "mixed_bfloat16")
        images = np.zeros((2, *net.inputs[0].shape[1:]), "float32")
        inputs = images if len(net.inputs) == 1 else [images, np.eye(10, dtype="float32")[:2]]
        assert len(net.inputs) == (1 if value == "planes" else 2)
        assert net(inputs).dtype == "float32"
        assert all(v.dtype == "float32" for v in net.weights)
