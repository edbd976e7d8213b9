import pytest

from gan_vae_tf import config as config_lib
from gan_vae_tf import rundir
from gan_vae_tf.config import Config
from gan_vae_tf.errors import UserError


@pytest.mark.parametrize("name", list(config_lib.PRESETS))
def test_every_preset_is_valid_and_round_trips_through_json(tmp_path, name):
    cfg = config_lib.preset(name)
    assert config_lib.validate(cfg) is cfg
    # As train.py writes it: the config plus a "run" section that from_json leaves out.
    rundir.write_json(tmp_path / "c.json", {**cfg.to_dict(), "run": {"precision": "float32"}})
    assert Config.from_json(tmp_path / "c.json") == cfg


def test_presets_reproduce_the_reports_defaults():
    gan, vae = config_lib.preset("gan-mnist"), config_lib.preset("vae-mnist")
    assert (gan.train.batch_size, gan.train.epochs, gan.train.learning_rate) == (256, 50, 1e-4)
    assert (vae.train.batch_size, vae.train.epochs, vae.vae.latent_dim) == (32, 10, 2)
    assert vae.data.binarize and gan.gan.noise_dim == 100


def test_set_overrides_typed_values():
    cfg = config_lib.override(config_lib.preset("vae-mnist"),
                              ["vae.latent_dim=8", "vae.encoder_widths=16,32", "data.limit=100",
                               "data.binarize=false", "vae.likelihood=gaussian", "vae.obs_sigma=0.2"])
    assert cfg.vae.latent_dim == 8 and cfg.vae.encoder_widths == (16, 32)
    assert cfg.data.limit == 100 and cfg.data.binarize is False and cfg.vae.obs_sigma == 0.2


@pytest.mark.parametrize("item, message", [
    ("epochs=3", "section.key=value"),
    ("nope.epochs=3", "unknown section"),
    ("train.nope=3", "unknown key"),
    ("train.epochs=three", "expected a value"),
    ("train.epochs=0", "epochs must be a positive integer"),
    ("train.batch_size=-4", "batch size must be a positive integer"),
    ("vae.latent_dim=0", "latent size must be a positive integer"),
    ("train.precision=float8", "precision must be one of"),
])
def test_bad_overrides_are_one_line_errors(item, message):
    with pytest.raises(UserError, match=message):
        config_lib.override(config_lib.preset("vae-mnist"), [item])


def test_unknown_preset_names_the_choices():
    with pytest.raises(UserError, match="gan-mnist"):
        config_lib.preset("gan-cifar")


def test_bernoulli_likelihood_requires_binary_pixels():
    with pytest.raises(UserError, match="binary pixels"):
        config_lib.override(config_lib.preset("vae-mnist"), ["data.binarize=false"])
