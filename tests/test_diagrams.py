import keras
import numpy as np
import pytest
from PIL import Image, ImageFont

from gan_vae_tf import config as config_lib
from gan_vae_tf import diagrams, kinds, networks
from helpers import tiny_config

PRESETS = list(config_lib.PRESETS)
NAMES = {"gan": {"generator", "discriminator"}, "vae": {"encoder", "decoder"}}
BUILDERS = {
    "gan": (networks.generator, networks.discriminator),
    "vae": (networks.encoder, networks.decoder),
}


def assert_readable_png(path, max_width=2000):
    with Image.open(path) as im:
        assert im.format == "PNG"
        rgb = np.asarray(im.convert("RGB"))
    height, width = rgb.shape[:2]
    assert 50 < width <= max_width and height > 50
    assert len(np.unique(rgb.reshape(-1, 3), axis=0)) > 2, "more than a blank canvas"


def sample_input(model: keras.Model) -> np.ndarray | list[np.ndarray]:
    """Two random inputs for the network; a network that also takes a label gets one-hot ones."""
    rng = np.random.default_rng(0)
    shape = (2, *model.inputs[0].shape[1:])
    x = rng.standard_normal(shape).astype("float32")
    if len(model.inputs) == 1:
        return x
    return [x, np.eye(model.inputs[1].shape[-1], dtype="float32")[[1, 3]]]


@pytest.mark.parametrize("name", PRESETS)
def test_network_diagrams_writes_one_readable_png_per_network(tmp_path, name):
    cfg = config_lib.preset(name)
    model = kinds.of(cfg).build(cfg)
    paths = diagrams.network_diagrams(model.networks(), tmp_path / name, f"{name} ")
    assert set(paths) == set(model.networks()) and NAMES[cfg.model] <= set(paths)
    for net, path in paths.items():
        assert path == tmp_path / name / f"{net}.png"
        assert_readable_png(path)
    assert sorted(p.name for p in (tmp_path / name).iterdir()) == sorted(f"{n}.png" for n in paths)


@pytest.mark.parametrize("name", PRESETS)
def test_models_still_predict_and_save_after_drawing(tmp_path, name):
    cfg = tiny_config(name)
    for build in BUILDERS[cfg.model]:
        model = build(cfg, "float32")
        x = sample_input(model)
        before = model.predict(x, verbose=0)
        diagrams.layered_diagram(model, tmp_path / f"{model.name}.png")
        assert not any(
            hasattr(layer, "output_shape") or hasattr(layer, "input_shape")
            for layer in model.layers
        )
        np.testing.assert_allclose(model.predict(x, verbose=0), before, rtol=1e-5, atol=1e-6)
        model.save(tmp_path / f"{model.name}.keras")
        loaded = keras.saving.load_model(tmp_path / f"{model.name}.keras")
        np.testing.assert_allclose(loaded.predict(x, verbose=0), before, rtol=1e-5, atol=1e-6)


def test_keras2_shapes_lends_shapes_and_takes_them_back_even_on_error():
    model = networks.generator(tiny_config("gan-mnist"))
    with pytest.raises(RuntimeError, match="boom"):
        with diagrams.keras2_shapes(model):
            dense, reshape = model.layers[0], model.layers[3]
            assert dense.output_shape == (None, 7 * 7 * 16)
            assert reshape.input_shape == (None, 7 * 7 * 16)
            assert reshape.output_shape == (None, 7, 7, 16)
            raise RuntimeError("boom")
    assert not any(hasattr(layer, "output_shape") for layer in model.layers)


class Subclassed(keras.Model):
    def __init__(self):
        super().__init__()
        self.dense = keras.layers.Dense(4)
        self.reshape = keras.layers.Reshape((2, 2))

    def call(self, x):
        return self.reshape(self.dense(x))


def test_keras2_shapes_computes_shapes_of_layers_never_called_symbolically(tmp_path):
    model = Subclassed()
    model(np.zeros((1, 3), "float32"))
    with diagrams.keras2_shapes(model):
        assert [layer.output_shape[1:] for layer in model.layers] == [(4,), (2, 2)]
    assert not hasattr(model.dense, "output_shape")
    assert_readable_png(diagrams.layered_diagram(model, tmp_path / "s.png"))


def test_wide_networks_shrink_to_max_width(tmp_path):
    model = networks.generator(config_lib.preset("gan-anime"))
    path = diagrams.layered_diagram(model, tmp_path / "g.png", max_width=600, title="narrow")
    assert_readable_png(path, max_width=600)


def test_diagrams_work_without_any_installed_font(tmp_path, monkeypatch):
    truetype = ImageFont.truetype

    def no_font_files(font, *args, **kwargs):
        if isinstance(font, (str, bytes)) or hasattr(font, "__fspath__"):
            raise OSError("no fonts here")
        return truetype(font, *args, **kwargs)

    monkeypatch.setattr(ImageFont, "truetype", no_font_files)
    assert diagrams.load_font().getbbox("Ag")[3] > 5
    model = networks.discriminator(tiny_config("gan-mnist"))
    assert_readable_png(diagrams.layered_diagram(model, tmp_path / "d.png", legend=True))


def test_diagrams_name_the_keras_layers_a_faster_kernel_computes():
    cfg = config_lib.preset("gan-mnist")  # pixel-shuffle convolutions and fused batch norm
    nets = kinds.of(cfg).build(cfg).networks()
    own = {type(layer).__name__ for net in nets.values() for layer in net.layers}
    assert {"PixelUnshuffleConv2D", "PixelShuffleConv2DTranspose", "FusedBatchNormalization"} <= own
    for net in nets.values():
        drawn = diagrams.as_keras_layers(net)
        assert all(type(layer).__module__.startswith("keras.") for layer in drawn.layers)
        assert [type(layer).__name__ for layer in drawn.layers] == [
            type(layer)
            .__name__.replace("PixelUnshuffle", "")
            .replace("PixelShuffle", "")
            .replace("FusedBatch", "Batch")
            for layer in net.layers
        ]
        assert drawn.count_params() == net.count_params()
