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


def test_report_presets_reproduce_the_reports_defaults():
    gan, vae = config_lib.preset("gan-mnist-report"), config_lib.preset("vae-mnist-report")
    assert (gan.train.batch_size, gan.train.epochs, gan.train.learning_rate) == (256, 50, 1e-4)
    assert (vae.train.batch_size, vae.train.epochs, vae.vae.latent_dim) == (32, 10, 2)
    assert vae.data.binarize and gan.gan.noise_dim == 100
    assert gan.train.steps_per_epoch is None and gan.gan.ema_decay == 0.0
    gan64 = config_lib.preset("gan-anime-report")
    assert (gan64.train.batch_size, gan64.train.learning_rate, gan64.train.beta_1) == (
        128,
        2e-4,
        0.5,
    )
    assert gan64.gan.disc_widths == (64, 128, 256, 512) and gan64.gan.gen_base_width == 512


@pytest.mark.parametrize("name", ["gan-mnist", "gan-anime"])
def test_default_gan_presets_are_dcgans_sized_in_steps_with_a_generator_ema(name):
    cfg = config_lib.preset(name)
    assert cfg.model == "gan" and cfg.train.steps_per_epoch and cfg.gan.ema_decay > 0
    assert config_lib.preset(f"{name}-report").data == cfg.data


def test_optional_values_parse_as_their_annotated_type():
    cfg = config_lib.override(
        config_lib.preset("gan-mnist"), ["gan.disc_learning_rate=4e-4", "train.steps_per_epoch=7"]
    )
    assert cfg.gan.disc_learning_rate == 4e-4 and cfg.train.steps_per_epoch == 7
    cfg = config_lib.override(cfg, ["gan.disc_learning_rate=none", "train.steps_per_epoch=none"])
    assert cfg.gan.disc_learning_rate is None and cfg.train.steps_per_epoch is None
    with pytest.raises(UserError, match="expected"):
        config_lib.override(cfg, ["train.steps_per_epoch=many"])


def test_set_overrides_typed_values():
    cfg = config_lib.override(
        config_lib.preset("vae-mnist"),
        [
            "vae.latent_dim=8",
            "vae.encoder_widths=16,32",
            "data.limit=100",
            "data.binarize=false",
            "vae.likelihood=gaussian",
            "vae.obs_sigma=0.2",
        ],
    )
    assert cfg.vae.latent_dim == 8 and cfg.vae.encoder_widths == (16, 32)
    assert cfg.data.limit == 100 and cfg.data.binarize is False and cfg.vae.obs_sigma == 0.2


@pytest.mark.parametrize(
    "preset, item, message",
    [
        ("vae-mnist", "epochs=3", "section.key=value"),
        ("vae-mnist", "nope.epochs=3", "unknown section"),
        ("vae-mnist", "train.nope=3", "unknown key"),
        ("vae-mnist", "train.epochs=three", "expected a value"),
        ("vae-mnist", "train.epochs=0", "epochs must be a positive integer"),
        ("vae-mnist", "train.batch_size=-4", "batch size must be a positive integer"),
        ("vae-mnist", "vae.latent_dim=0", "latent size must be a positive integer"),
        ("vae-mnist", "train.precision=float8", "precision must be one of"),
        ("gan-mnist", "gan.ema_decay=1.0", "ema_decay"),
        ("gan-mnist", "gan.label_smoothing=-0.1", "label_smoothing"),
        ("gan-mnist", "train.steps_per_epoch=0", "steps per epoch"),
        ("gan-mnist", "gan.disc_learning_rate=0", "disc_learning_rate"),
        ("gan-mnist", "gan.r1_gamma=-1", "r1_gamma"),
        ("gan-mnist", "gan.r1_every=0", "r1_every must be a positive integer"),
        ("gan-mnist", "train.beta_1=1.0", "beta_1"),
        ("vae-mnist", "train.beta_2=-0.5", "beta_2"),
        ("gan-mnist", "train.lr_decay=1.5", "lr_decay"),
        ("gan-mnist", "gan.kernel_size=7", "pixel_shuffle needs"),
        ("gan-mnist", "data.image_size=27", "pixel_shuffle needs"),
    ],
)
def test_bad_or_out_of_range_overrides_are_one_line_errors(preset, item, message):
    with pytest.raises(UserError, match=message):
        config_lib.override(config_lib.preset(preset), [item])


def test_unknown_preset_names_the_choices():
    with pytest.raises(UserError, match="gan-mnist"):
        config_lib.preset("gan-cifar")


def test_bernoulli_likelihood_requires_binary_pixels():
    with pytest.raises(UserError, match="binary pixels"):
        config_lib.override(config_lib.preset("vae-mnist"), ["data.binarize=false"])
