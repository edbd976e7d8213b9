"""Use what you trained: `python -m gan_vae_tf.generate`, the Python API `gan_vae_tf.load`, and
the SavedModel `python -m gan_vae_tf.export` writes."""

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import gan_vae_tf
from gan_vae_tf import export, generate, train
from helpers import ROOT, train_args, write_mnist


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """A finished tiny DCGAN (with an EMA generator) and VAE, trained once for this module."""
    root = tmp_path_factory.mktemp("generate")
    data = write_mnist(root / "data" / "mnist")
    made = {}
    for preset in ("gan-mnist", "vae-mnist"):
        made[preset] = root / preset
        assert train.main(train_args(preset, data, made[preset], epochs=1)) == 0
    return made


def _generate(*args) -> tuple[int, str, str]:
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = generate.main([str(a) for a in args])
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("preset", ["gan-mnist", "vae-mnist"])
def test_generate_writes_a_grid_a_folder_and_an_npy_of_the_same_images(runs, tmp_path, preset):
    run = runs[preset]
    for out in ("grid.png", "files", "images.npy"):
        code, printed, _ = _generate(run, "--num", 10, "--seed", 4, "--out", tmp_path / out)
        assert code == 0 and re.search(r"10 images in [\d.]+ s \(\d+ images/s\)", printed)
    images = np.load(tmp_path / "images.npy")
    assert images.shape == (10, 28, 28, 1) and images.dtype == np.uint8
    files = sorted((tmp_path / "files").iterdir())
    assert [f.name for f in files] == [f"{i:04d}.png" for i in range(10)]
    np.testing.assert_array_equal(np.asarray(Image.open(files[3])), images[3, ..., 0])
    grid = np.asarray(Image.open(tmp_path / "grid.png"))
    np.testing.assert_array_equal(grid[2:30, 2:30], images[0, ..., 0])  # after the white gutter
    np.testing.assert_array_equal(images, gan_vae_tf.load(run).sample(10, seed=4))


@pytest.mark.slow
def test_the_same_seed_gives_the_same_bytes_in_another_process(runs, tmp_path):
    run = runs["gan-mnist"]
    for name in ("a.png", "a.npy"):
        assert _generate(run, "--num", 20, "--seed", 9, "--out", tmp_path / name)[0] == 0
        child = subprocess.run(
            [sys.executable, "-m", "gan_vae_tf.generate", str(run), "--num", "20", "--seed", "9"]
            + ["--out", str(tmp_path / f"b{Path(name).suffix}")],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert child.returncode == 0, child.stderr[-2000:]
        b = tmp_path / f"b{Path(name).suffix}"
        assert (tmp_path / name).read_bytes() == b.read_bytes()
    assert _generate(run, "--num", 20, "--seed", 10, "--out", tmp_path / "c.npy")[0] == 0
    assert not np.array_equal(np.load(tmp_path / "a.npy"), np.load(tmp_path / "c.npy"))


def test_the_raw_generator_draws_other_images_than_the_average(runs, tmp_path):
    run = runs["gan-mnist"]
    assert _generate(run, "--num", 6, "--out", tmp_path / "ema.npy")[0] == 0
    assert _generate(run, "--num", 6, "--raw-generator", "--out", tmp_path / "raw.npy")[0] == 0
    raw = gan_vae_tf.load(run).sample(6, generator="raw")
    np.testing.assert_array_equal(np.load(tmp_path / "raw.npy"), raw)
    assert not np.array_equal(np.load(tmp_path / "ema.npy"), raw)


@pytest.mark.parametrize("preset", ["gan-mnist", "vae-mnist"])
def test_interpolation_ends_are_the_samples_of_their_codes(runs, tmp_path, preset):
    model = gan_vae_tf.load(runs[preset])
    walk = model.interpolate(rows=3, steps=5, seed=2)
    assert walk.shape == (3, 5, 28, 28, 1)
    ends = model.codes(6, seed=2)
    for column, codes in ((0, ends[0::2]), (-1, ends[1::2])):
        diff = walk[:, column].astype(int) - model.decode(codes).astype(int)
        assert np.abs(diff).max() <= 1  # one rounding step: other batch, other float order
    assert (
        _generate(runs[preset], "--interpolate", 5, "--num", 3, "--out", tmp_path / "w.gif")[0] == 0
    )
    with Image.open(tmp_path / "w.gif") as gif:
        assert gif.n_frames == 5
    assert (
        _generate(runs[preset], "--interpolate", 5, "--num", 3, "--out", tmp_path / "w.png")[0] == 0
    )
    assert np.asarray(Image.open(tmp_path / "w.png")).shape == (3 * 30 + 2, 5 * 30 + 2)


def test_reconstruct_shows_three_of_your_images_beside_their_reconstructions(runs, tmp_path):
    own = tmp_path / "mine"
    own.mkdir()
    (own / "notes.jpg").write_bytes(b"not an image")  # skipped with a warning, as in training
    for i in range(3):
        digit = np.zeros((56, 40), np.uint8)  # not square and not 28x28: cropped and resized
        digit[10:46, 10 + 4 * i : 22 + 4 * i] = 255
        Image.fromarray(digit).save(own / f"{i}.png")
    run = runs["vae-mnist"]
    assert _generate(run, "--reconstruct", own, "--out", tmp_path / "r.npy")[0] == 0
    seen, recon = np.load(tmp_path / "r.npy")
    assert seen.shape == recon.shape == (3, 28, 28, 1)
    assert set(np.unique(seen)) <= {0, 255}  # binarized, as the run's training digits were
    np.testing.assert_array_equal(recon, gan_vae_tf.load(run).reconstruct(seen)[1])
    assert _generate(run, "--reconstruct", own, "--out", tmp_path / "r.png")[0] == 0
    assert np.asarray(Image.open(tmp_path / "r.png")).shape == (32, 6 * 30 + 2)
    assert _generate(run, "--reconstruct", own, "--out", tmp_path / "pairs")[0] == 0
    assert np.asarray(Image.open(tmp_path / "pairs" / "0000.png")).shape == (28, 58)


def _error(code: int, err: str) -> str:
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    return lines[0]


def test_bad_input_is_one_error_line_exit_2_and_no_file(runs, tmp_path, monkeypatch):
    run, out = runs["vae-mnist"], tmp_path / "out.png"
    half_done = tmp_path / "not-a-run"
    half_done.mkdir()
    (half_done / "config.json").write_text(json.dumps({"preset": "vae-mnist"}))
    assert "has no trained model" in _error(*_pair(_generate(half_done, "--out", out)))
    assert "--num must be positive" in _error(*_pair(_generate(run, "--num", 0, "--out", out)))
    monkeypatch.setattr(generate, "_memory_available", lambda: 2**30)
    message = _error(*_pair(_generate(run, "--num", 10**6, "--out", out)))
    assert "need about 1.5 GiB; 1.0 GiB of memory is free" in message
    monkeypatch.undo()
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    message = _error(*_pair(_generate(run, "--num", 2, "--out", blocker / "x.png")))
    assert "a-file is not a writable folder" in message  # said before any image is made
    if Path("/proc/self").is_dir():  # a folder that takes no new files, whoever asks
        message = _error(*_pair(_generate(run, "--num", 2, "--out", "/proc/generated.png")))
        assert message.startswith("error: cannot write /proc/generated.png")
    empty, rgb = tmp_path / "empty", tmp_path / "rgb"
    empty.mkdir()
    rgb.mkdir()
    Image.fromarray(np.zeros((30, 30, 3), np.uint8)).save(rgb / "colour.jpg")
    assert "no images" in _error(*_pair(_generate(run, "--reconstruct", empty, "--out", out)))
    message = _error(*_pair(_generate(run, "--reconstruct", rgb, "--out", out)))
    assert "colour.jpg has 3 colour channels; this run's images have 1" in message
    message = _error(*_pair(_generate(runs["gan-mnist"], "--reconstruct", rgb, "--out", out)))
    assert "needs a VAE" in message
    gif = tmp_path / "r.gif"
    message = _error(*_pair(_generate(run, "--reconstruct", rgb, "--interpolate", 3, "--out", gif)))
    assert "animates an interpolation" in message
    with pytest.raises(gan_vae_tf.errors.UserError, match="uint8 array of shape"):
        gan_vae_tf.load(run).encode(np.zeros((2, 28, 28, 1), np.float32))
    assert (
        not out.exists()
        and not list(tmp_path.glob(".out*"))
        and not list(blocker.parent.glob(".x*"))
    )


def _pair(result):
    code, _, err = result
    return code, err


README_SNIPPET = re.compile(r"## Use what you trained.*?```python\n(.*?)```", re.S)


def test_the_readme_python_example_runs(runs, tmp_path):
    snippet = README_SNIPPET.search((ROOT / "README.md").read_text()).group(1)
    assert len(snippet.strip().splitlines()) <= 6
    code = snippet.replace("experiments/runs/vae-mnist-20261204-120000", str(runs["vae-mnist"]))
    assert code != snippet, "the example names the run folder the test replaces"
    printed = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert printed.returncode == 0, printed.stderr[-2000:]
    assert "vae-mnist (16, 28, 28, 1) uint8" in printed.stdout


@pytest.mark.parametrize("preset", ["gan-mnist", "vae-mnist"])
def test_a_run_folder_moved_elsewhere_still_loads(runs, tmp_path, preset):
    """Copied, then the copy moved and its first place deleted: nothing inside names a path."""
    import shutil

    first = Path(shutil.copytree(runs[preset], tmp_path / "a" / "run"))
    before = gan_vae_tf.load(first).sample(4, seed=1)
    moved = Path(shutil.move(first, tmp_path / "b" / "elsewhere"))
    shutil.rmtree(tmp_path / "a")
    np.testing.assert_array_equal(gan_vae_tf.load(moved).sample(4, seed=1), before)


def test_generate_without_a_run_takes_the_newest_finished_one(runs, tmp_path, monkeypatch):
    import os
    import shutil

    monkeypatch.chdir(tmp_path)
    older = Path(shutil.copytree(runs["vae-mnist"], "experiments/runs/vae-mnist-older"))
    newer = Path(shutil.copytree(runs["gan-mnist"], "experiments/runs/gan-mnist-newer"))
    os.utime(older / "model.keras", (1, 1))
    code, printed, _ = _generate("--num", 4, "--seed", 2, "--out", "x.npy")
    assert code == 0 and "gan-mnist-newer" in printed
    np.testing.assert_array_equal(np.load("x.npy"), gan_vae_tf.load(newer).sample(4, seed=2))


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["gan-mnist", "vae-mnist"])
def test_the_savedmodel_serves_without_the_package_and_matches(runs, tmp_path, preset):
    out = export.export(runs[preset], tmp_path / "saved")
    model = gan_vae_tf.load(runs[preset])
    codes = model.codes(5, seed=7)
    np.save(tmp_path / "codes.npy", codes)
    child = textwrap.dedent(
        f"""
        import sys
        sys.modules["gan_vae_tf"] = None  # importing it would fail: the graph must do
        sys.modules["keras"] = None
        import numpy as np, tensorflow as tf
        served = tf.saved_model.load({str(out)!r})
        codes = np.load({str(tmp_path / "codes.npy")!r})
        a = served.signatures["serving_default"](tf.constant(codes))
        b = served.signatures["sample"](count=tf.constant(5), seed=tf.constant(7))
        np.savez({str(tmp_path / "served.npz")!r}, images=a["images"].numpy(),
                 uint8=a["images_uint8"].numpy(), sampled=b["images"].numpy())
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", child], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    served = np.load(tmp_path / "served.npz")
    expected = np.asarray(model.kind.images_from_codes(model.model, codes))
    np.testing.assert_allclose(served["images"], expected, atol=1e-5)
    np.testing.assert_allclose(served["sampled"], expected, atol=1e-5)  # the same seed's codes
    np.testing.assert_array_equal(served["uint8"], model.decode(codes))


def test_export_refuses_an_existing_folder_and_a_folder_that_is_not_a_run(runs, tmp_path, capsys):
    (tmp_path / "taken").mkdir()
    assert export.main([str(runs["gan-mnist"]), str(tmp_path / "taken")]) == 2
    assert export.main([str(tmp_path), str(tmp_path / "new")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0] == f"error: {tmp_path / 'taken'} exists: export writes a new folder"
    assert err[1].startswith("error: ") and "is not a run directory" in err[1]
    assert not (tmp_path / "new").exists()


@pytest.mark.slow
def test_the_onnx_file_round_trips_through_onnxruntime(runs, tmp_path):
    import onnxruntime  # in the dev extra, so CI runs this

    run = runs["gan-mnist"]
    assert export.main([str(run), str(tmp_path / "saved"), "--onnx", str(tmp_path / "g.onnx")]) == 0
    session = onnxruntime.InferenceSession(str(tmp_path / "g.onnx"))
    model = gan_vae_tf.load(run)
    codes = model.codes(6, seed=5)
    images, as_bytes = session.run(["images", "images_uint8"], {"codes": codes})
    expected = np.asarray(model.kind.images_from_codes(model.model, codes))
    np.testing.assert_allclose(images, expected, atol=1e-5)
    np.testing.assert_array_equal(as_bytes, model.decode(codes))
