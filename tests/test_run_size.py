"""model.keras is for inference and sharing: no optimizer state (checkpoint/ has it), and runs
saved the old way, with it, still evaluate."""

from __future__ import annotations

import json
import zipfile

import h5py
import keras
import numpy as np

from gan_vae_tf import evaluate, kinds, train
from gan_vae_tf.rundir import RunDir
from helpers import tiny_config, train_args


def _train(run, data_dir, preset="gan-mnist") -> RunDir:
    assert train.main(train_args(preset, data_dir, run, epochs=1)) == 0
    return RunDir(run)


def _weight_paths(keras_file) -> list[str]:
    with zipfile.ZipFile(keras_file) as z, z.open("model.weights.h5") as f, h5py.File(f) as h5:
        paths: list[str] = []
        h5.visit(paths.append)
    return paths


def test_model_keras_holds_no_optimizer_state_and_the_same_weights(tmp_path, mnist_dir):
    run = _train(tmp_path / "run", mnist_dir)
    assert not [p for p in _weight_paths(run.model) if "optimizer" in p]
    _, loaded = kinds.load_run(run.path)
    assert set(loaded.networks()) == {"generator", "discriminator", "generator_ema"}
    for name, net in loaded.networks().items():
        saved = keras.saving.load_model(run.network(name))
        for a, b in zip(net.get_weights(), saved.get_weights(), strict=True):
            np.testing.assert_array_equal(a, b)


def test_a_run_saved_with_optimizer_state_still_evaluates(tmp_path, mnist_dir):
    run = _train(tmp_path / "run", mnist_dir, "vae-mnist").path
    cfg = tiny_config("vae-mnist")
    old = kinds.build(cfg)  # compiled, as model.keras was saved before
    old.save(run / "model.keras")
    assert [p for p in _weight_paths(run / "model.keras") if "optimizer" in p]
    assert evaluate.main([str(run), "--num", "16", "--quality-num", "0", "--iwae-k", "0"]) == 0
    assert json.loads((run / "metrics.json").read_text())["elbo_nats"] < 0
