"""Runs written by earlier versions of the package still load, sample and resume."""

import shutil
from pathlib import Path

import numpy as np
import pytest

from gan_vae_tf import kinds, train
from helpers import write_mnist

FIXTURES = Path(__file__).parent / "fixtures"
OLD_RUNS = {"gan-mnist": "gan-mnist-06a94bc", "vae-mnist": "vae-mnist-06a94bc"}


@pytest.mark.parametrize("preset", list(OLD_RUNS))
def test_a_run_folder_from_06a94bc_loads_and_samples_finite_unit_range_images(preset):
    cfg, model = kinds.load_run(FIXTURES / OLD_RUNS[preset])
    assert cfg.preset == preset
    images = np.asarray(model.sample(4))
    assert images.shape == (4, 28, 28, 1)
    assert np.isfinite(images).all() and images.min() >= 0.0 and images.max() <= 1.0


@pytest.mark.parametrize("preset", list(OLD_RUNS))
def test_a_run_from_06a94bc_resumes_with_its_random_streams_for_another_epoch(
    preset, tmp_path, monkeypatch, caplog
):
    run = Path(shutil.copytree(FIXTURES / OLD_RUNS[preset], tmp_path / "run"))
    monkeypatch.setenv("GAN_VAE_TF_DATA_DIR", str(write_mnist(tmp_path / "data" / "mnist").parent))
    assert train.main(["--resume", str(run), "--epochs", "2", "--progress", "none"]) == 0
    history = (run / "history.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in history[1:]] == ["1", "2"]
    assert (run / "samples" / "epoch_0002.png").is_file()
    assert "random-generator state" not in caplog.text
