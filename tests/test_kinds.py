"""One record per model kind: every preset builds and trains, the per-epoch grid, sampling."""

import json
from dataclasses import replace

import numpy as np
import pytest

from gan_vae_tf import config, data, kinds
from gan_vae_tf.errors import UserError
from helpers import TINY, synthetic_batches, tiny_config


@pytest.mark.parametrize("preset", ["gan-mnist", "vae-mnist", "gan-anime", "vae-anime"])
def test_one_train_step_changes_every_network_and_keeps_losses_finite(preset):
    cfg = tiny_config(preset)
    model = kinds.build(cfg)
    before = {
        name: [w.numpy().copy() for w in part.weights] for name, part in model.networks().items()
    }
    logs = model.train_step(next(iter(synthetic_batches(cfg))))
    assert all(np.isfinite(float(v)) for v in logs.values())
    for name, part in model.networks().items():
        changed = [
            not np.allclose(a, b.numpy()) for a, b in zip(before[name], part.weights, strict=True)
        ]
        assert any(changed), f"{name} did not change"


def test_the_per_epoch_gan_grid_is_sample_grid_tiles_on_a_side():
    cfg = tiny_config("gan-mnist", sample_grid=3)
    kind = kinds.of(cfg)
    inputs = kind.grid_inputs(cfg, None, np.random.default_rng(0))
    assert inputs["noise"].shape == (9, cfg.gan.noise_dim)
    assert kind.draw_grid(kinds.build(cfg), inputs).shape == (3 * 30 + 2, 3 * 30 + 2, 1)


@pytest.mark.parametrize("components, extra", [(0, 0), (200, 1)])
def test_the_per_epoch_vae_grid_decodes_sample_grid_squared_prior_draws(components, extra):
    """Its fixed noise is z under N(0, I), and one column wider under a mixture prior."""
    cfg = config.override(
        tiny_config("vae-mnist", sample_grid=3), [f"vae.prior_components={components}"]
    )
    inputs = kinds.of(cfg).grid_inputs(cfg, data.synthetic(40), np.random.default_rng(0))
    assert inputs["z"].shape == (9, cfg.vae.latent_dim + extra)


def test_the_default_digit_grid_is_large_enough_for_every_class_and_the_reports_keep_4x4():
    assert config.preset("gan-mnist").train.sample_grid == 8
    assert config.preset("gan-mnist-report").train.sample_grid == 4


@pytest.mark.parametrize("preset", ["gan-mnist", "vae-mnist"])
def test_both_models_sample_images_in_unit_range(preset):
    cfg = tiny_config(preset)
    images = kinds.build(cfg).sample(4).numpy()
    assert images.shape == (4, 28, 28, 1) and images.min() >= 0.0 and images.max() <= 1.0


@pytest.mark.parametrize("name", list(config.PRESETS))
def test_every_preset_builds_and_takes_a_train_step(name):
    cfg = config.preset(name)
    cfg = config.override(cfg, TINY[name.removesuffix("-report")])
    cfg = replace(cfg, train=replace(cfg.train, batch_size=4))
    model = kinds.build(cfg, steps_per_epoch=2)  # 8 images at batch 4, as train.py sizes it
    logs = model.train_step(next(iter(synthetic_batches(cfg, n=8))))
    assert all(np.isfinite(float(v)) for v in logs.values())


def test_an_unknown_kind_of_model_is_a_user_error():
    cfg = replace(tiny_config("gan-mnist"), model="flow")
    with pytest.raises(UserError, match="model must be one of gan, vae, got 'flow'"):
        kinds.of(cfg)


def test_each_kind_sees_pixels_in_the_range_of_its_last_activation():
    edges = np.array([0, 255], np.uint8)
    gan, vae = tiny_config("gan-mnist"), tiny_config("vae-mnist")
    assert kinds.of(gan).pixels(gan).scale(edges).numpy().tolist() == [-1.0, 1.0]
    assert kinds.of(vae).pixels(vae) == data.PixelRange(0.0, 1.0, binarize=True)


def test_load_run_says_what_a_folder_lacks(tmp_path):
    with pytest.raises(UserError, match="is not a directory"):
        kinds.load_run(tmp_path / "missing")
    with pytest.raises(UserError, match="has no config.json"):
        kinds.load_run(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps(tiny_config("vae-mnist").to_dict()))
    with pytest.raises(UserError, match=r"no trained model \(model.keras\): did training finish"):
        kinds.load_run(tmp_path)


def test_a_loaded_model_reads_its_options_from_the_run_config(tmp_path):
    """The run's config.json is the record of how it was trained: a run told to sample its raw
    generator does so after loading, though its .keras file (06a94bc's) kept no such option."""
    import shutil
    from pathlib import Path

    run = Path(
        shutil.copytree(Path(__file__).parent / "fixtures" / "gan-mnist-06a94bc", tmp_path / "r")
    )
    record = json.loads((run / "config.json").read_text())
    record["gan"]["sample_with_ema"] = False
    (run / "config.json").write_text(json.dumps(record))
    cfg, model = kinds.load_run(run)
    assert model.options == cfg.gan and model.options.noise_dim == 8
    assert model.generator_ema is not None and model.default_generator == "raw"
