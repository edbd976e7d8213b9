import csv
import json

import numpy as np
import pytest
from PIL import Image

from gan_vae_tf import evaluate, kinds, train
from helpers import shared_data, train_args, write_mnist


def _train(run_dir, preset, data_dir, *extra):
    return train.main(train_args(preset, data_dir, run_dir, *extra))


@pytest.mark.parametrize("preset", ["gan-mnist", "vae-mnist"])
def test_tiny_run_writes_pngs_history_models_and_metrics(tmp_path, mnist_dir, preset, capsys):
    run = tmp_path / "run"
    assert _train(run, preset, mnist_dir) == 0
    for epoch in (1, 2):
        png = Image.open(run / "samples" / f"epoch_{epoch:04d}.png")
        assert png.width > 50 and png.height > 50
    rows = list(csv.DictReader((run / "history.csv").open()))
    assert [r["epoch"] for r in rows] == ["1", "2"] and float(rows[0]["seconds"]) > 0
    expected = (
        {"d_real", "d_fake", "d_loss", "g_loss"} if preset == "gan-mnist" else {"val_elbo", "loss"}
    )
    assert expected <= set(rows[0])
    assert (run / "loss_curves.png").stat().st_size > 1000
    assert all((run / f).is_file() for f in ("model.keras", "config.json", "summary.json"))
    summary = json.loads((run / "summary.json").read_text())
    images = 2 * (96 // 16) * 16  # 2 epochs of the 96 digits' full batches of 16
    assert summary["images_per_second"] == pytest.approx(images / summary["seconds"], rel=0.01)
    recorded = json.loads((run / "config.json").read_text())
    assert recorded["run"]["data"]["train_images"] == 96 and recorded["run"]["data"][
        "source"
    ].startswith("idx:")

    assert evaluate.main([str(run), "--num", "24"]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    if preset == "gan-mnist":
        assert 0.0 < metrics["d_fake"] < 1.0 and 0.0 < metrics["d_real"] < 1.0
        assert "discriminator probability on generated images" in capsys.readouterr().out
    else:
        assert metrics["elbo_nats"] < 0 and metrics["reconstruction_mse"] > 0
        assert metrics["elbo_bits_per_dim"] == pytest.approx(
            -metrics["elbo_nats"] / (784 * np.log(2))
        )
        assert "test ELBO" in capsys.readouterr().out


def test_existing_run_is_not_overwritten_without_asking(tmp_path, mnist_dir, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "history.csv").write_text("epoch\n1\n")
    assert _train(run, "gan-mnist", mnist_dir) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert (run / "history.csv").read_text() == "epoch\n1\n"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--preset", "gan-cifar"], "unknown preset"),
        (["--preset", "gan-mnist", "--epochs", "0"], "epochs must be a positive integer"),
        (["--preset", "gan-mnist", "--batch-size", "-1"], "batch size must be a positive integer"),
        (["--preset", "vae-mnist", "--latent-dim", "0"], "latent size must be a positive integer"),
        (["--preset", "gan-mnist", "--data-dir", "/nonexistent/data"], "does not exist"),
    ],
)
def test_bad_training_input_is_one_line_and_exit_2(tmp_path, args, message, capsys):
    assert train.main([*args, "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and message in err and "\n" not in err


@pytest.mark.parametrize("damage", ["truncate", "mismatch"])
def test_damaged_idx_file_is_one_line_and_a_retry_works_once_fixed(
    tmp_path, mnist_dir, damage, capsys
):
    images = mnist_dir / "train-images-idx3-ubyte.gz"
    original = images.read_bytes()
    if damage == "truncate":
        images.write_bytes(original[: len(original) // 2])
    else:
        (mnist_dir / "train-labels-idx1-ubyte.gz").write_bytes(
            (mnist_dir / "t10k-labels-idx1-ubyte.gz").read_bytes()
        )
    run = tmp_path / "run"
    assert _train(run, "gan-mnist", mnist_dir) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err
    assert (
        ("train-images-idx3-ubyte.gz" in err)
        if damage == "truncate"
        else ("do not belong together" in err)
    )
    write_mnist(mnist_dir)  # repaired: the same command now runs in the same --out
    assert _train(run, "gan-mnist", mnist_dir) == 0


@pytest.mark.parametrize("content", ["nothing", "only_text", "only_corrupt"])
def test_anime_folder_without_images_is_one_line_and_exit_2(tmp_path, content, capsys, monkeypatch):
    monkeypatch.setenv("GAN_VAE_TF_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "faces"
    folder.mkdir()
    if content == "only_text":
        (folder / "notes.txt").write_text("hello")
    elif content == "only_corrupt":
        (folder / "a.jpg").write_bytes(b"junk")
        (folder / "b.png").write_bytes(b"junk")
    assert _train(tmp_path / "run", "gan-anime", folder) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and str(folder) in err and "\n" not in err


def test_unwritable_output_directory_is_a_clear_error(tmp_path, mnist_dir, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert _train(blocker / "run", "gan-mnist", mnist_dir) == 2
    assert "cannot write to run directory" in capsys.readouterr().err


def test_batch_larger_than_dataset_exits_cleanly(tmp_path, mnist_dir, capsys):
    assert _train(tmp_path / "r", "gan-mnist", mnist_dir, "--batch-size", "500") == 2
    assert "larger than the 96 training images" in capsys.readouterr().err


def test_evaluate_on_a_folder_that_is_not_a_run(tmp_path, capsys):
    assert evaluate.main([str(tmp_path)]) == 2
    assert "is not a run directory" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.skipif(
    shared_data() is None or not (shared_data() / "mnist").is_dir(), reason="real MNIST not present"
)
@pytest.mark.slow
def test_vae_learns_real_mnist_digits(tmp_path):
    run = tmp_path / "real"
    assert (
        train.main(
            [
                "--preset",
                "vae-mnist",
                "--epochs",
                "1",
                "--limit",
                "15000",
                "--data-dir",
                str(shared_data()),
                "--out",
                str(run),
                "--progress",
                "none",
            ]
        )
        == 0
    )
    history = list(csv.DictReader((run / "history.csv").open()))
    # An untrained decoder scores about -543 nats (784 * log 2); one short epoch must do far better.
    assert float(history[0]["val_elbo"]) > -240


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["gan-anime", "vae-anime"])
def test_anime_run_trains_through_corrupt_files_with_one_warning(tmp_path, monkeypatch, preset):
    monkeypatch.setenv("GAN_VAE_TF_CACHE", str(tmp_path / "cache"))
    faces = tmp_path / "faces"
    faces.mkdir()
    rng = np.random.default_rng(0)
    for i in range(40):
        size = (48 + i % 7, 40 + i % 5)
        Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(faces / f"{i}.jpg")
    (faces / "broken.jpg").write_bytes(b"not a jpeg at all")
    (faces / "readme.txt").write_text("ignored")
    run = tmp_path / "run"
    with pytest.warns(UserWarning, match="skipped 1 of 41 files") as record:
        assert _train(run, preset, faces) == 0
    assert len([w for w in record if "skipped" in str(w.message)]) == 1
    assert Image.open(run / "samples" / "epoch_0002.png").mode == "RGB"
    recorded = json.loads((run / "config.json").read_text())["run"]["data"]
    assert (recorded["train_images"], recorded["test_images"], recorded["skipped_files"]) == (
        36,
        4,
        1,
    )
    assert evaluate.main([str(run), "--num", "4"]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    if preset == "gan-anime":
        assert "d_fake" in metrics and "swd" in metrics["quality"]["model"]
    else:  # a density on [0, 1] pixels, read on the 8-bit scale
        assert metrics["likelihood"] == "gaussian"
        dims = 64 * 64 * 3
        assert metrics["elbo_bits_per_dim"] == pytest.approx(
            -metrics["elbo_nats"] / (dims * np.log(2)) + 8
        )


def test_cli_warnings_are_one_line_without_the_source_line(monkeypatch):
    import warnings

    from gan_vae_tf.errors import one_line_warnings

    monkeypatch.setattr(warnings, "formatwarning", warnings.formatwarning)
    one_line_warnings()
    text = warnings.formatwarning(
        UserWarning("skipped 3 of 403 files"), UserWarning, "data.py", 163
    )
    assert text == "warning: skipped 3 of 403 files\n"


def test_default_gan_run_keeps_an_ema_generator_and_evaluate_can_use_either(tmp_path, mnist_dir):
    run = tmp_path / "run"
    assert _train(run, "gan-mnist", mnist_dir, "--set", "gan.ema_decay=0.9") == 0
    assert (run / "generator_ema.keras").is_file() and (run / "generator.keras").is_file()
    assert evaluate.main([str(run), "--num", "24", "--quality-num", "0"]) == 0
    ema = json.loads((run / "metrics.json").read_text())
    assert evaluate.main([str(run), "--num", "24", "--quality-num", "0", "--raw-generator"]) == 0
    raw = json.loads((run / "metrics.json").read_text())
    assert (ema["generator"], raw["generator"]) == ("ema", "raw")
    assert ema["d_fake"] != raw["d_fake"]


def test_an_epoch_of_a_fixed_step_count_does_not_depend_on_the_data_size(tmp_path, mnist_dir):
    from gan_vae_tf import checkpoint, config

    run = tmp_path / "run"
    # 96 images at batch 16 are 6 steps per pass; epochs of 4 steps cross the passes.
    assert (
        _train(run, "gan-mnist", mnist_dir, "--set", "train.steps_per_epoch=4", "--epochs", "3")
        == 0
    )
    rows = list(csv.DictReader((run / "history.csv").open()))
    assert [r["epoch"] for r in rows] == ["1", "2", "3"]
    cfg = config.Config.from_json(run / "config.json")
    grid_inputs = kinds.of(cfg).grid_inputs(cfg, None, np.random.default_rng(0))
    state = checkpoint.RunState(kinds.build(cfg), grid_inputs)
    assert state.restore(run).epoch == 3
    assert int(state.model.optimizers()["g_optimizer"].iterations.numpy()) == 12


def _decayed_run(tmp_path, mnist_dir, monkeypatch, *resume: str):
    """A tiny gan-mnist run with `train.lr_decay=0.5` (2 epochs of 6 steps), optionally resumed
    with `resume` flags; returns the model the last process built and the base rate."""
    built = []
    build = kinds.build
    monkeypatch.setattr(kinds, "build", lambda *a, **k: built.append(build(*a, **k)) or built[-1])
    run = tmp_path / "run"
    assert _train(run, "gan-mnist", mnist_dir, "--set", "train.lr_decay=0.5") == 0
    if resume:
        assert train.main(["--resume", str(run), *resume, "--progress", "none"]) == 0
    rate = json.loads((run / "config.json").read_text())["train"]["learning_rate"]
    return built[-1], rate


def test_lr_decay_reaches_zero_at_the_last_step_of_a_run_sized_by_its_data(
    tmp_path, mnist_dir, monkeypatch
):
    model, rate = _decayed_run(tmp_path, mnist_dir, monkeypatch)
    for opt in model.optimizers().values():
        assert int(opt.iterations.numpy()) == 12  # 96 images at batch 16, 2 epochs
        assert float(opt.learning_rate) == 0.0
        opt.iterations.assign(9)
        assert float(opt.learning_rate) == pytest.approx(0.5 * rate)


def test_a_run_extended_on_resume_gets_its_decay_over_the_new_length(
    tmp_path, mnist_dir, monkeypatch
):
    model, rate = _decayed_run(tmp_path, mnist_dir, monkeypatch, "--epochs", "4")
    for opt in model.optimizers().values():
        assert int(opt.iterations.numpy()) == 24 and float(opt.learning_rate) == 0.0
        opt.iterations.assign(18)  # half-way through the decay over steps 12-24
        assert float(opt.learning_rate) == pytest.approx(0.5 * rate)
