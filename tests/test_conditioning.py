"""Class-conditional models: how the networks see the label, and what changes with it."""

from dataclasses import replace
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from gan_vae_tf import config, data, kinds, models
from gan_vae_tf.errors import UserError
from gan_vae_tf.models import conditioning
from helpers import pipeline, tiny_config


def _conditional(preset: str, classes: int = 3, **changes):
    cfg = tiny_config(preset)
    section = preset.split("-")[0]
    return replace(cfg, **{section: replace(getattr(cfg, section), classes=classes, **changes)})


# Every way an image network can take the label: (preset, change to its section).
LABEL_INPUTS = [
    (f"{option.split('.')[0]}-mnist", {option.split(".")[1]: value})
    for option, values in config.LABEL_INPUTS.items()
    for value in values
]


def test_a_label_is_a_one_hot_code_after_the_codes_and_one_hot_planes_after_the_channels():
    codes = conditioning.with_label_code(tf.zeros((2, 4)), tf.constant([2, 0]), 3).numpy()
    np.testing.assert_array_equal(codes[:, 4:], [[0, 0, 1], [1, 0, 0]])
    images = tf.fill((2, 5, 5, 1), 0.5)
    planes = conditioning.with_label_planes(images, tf.constant([1, 2]), 3).numpy()
    assert planes.shape == (2, 5, 5, 4)
    np.testing.assert_array_equal(planes[..., 0], 0.5)
    np.testing.assert_array_equal(planes[0, ..., 1:], np.broadcast_to([0, 1, 0], (5, 5, 3)))
    np.testing.assert_array_equal(planes[1, ..., 1:], np.broadcast_to([0, 0, 1], (5, 5, 3)))
    assert conditioning.with_label_code(images, None, 0) is images  # unconditional: untouched


@pytest.mark.parametrize("preset", ["gan-mnist", "vae-mnist"])
def test_with_the_same_noise_a_different_label_draws_a_different_image(preset):
    cfg = _conditional(preset)
    model = kinds.build(cfg)
    z = np.random.default_rng(0).standard_normal((1, kinds.of(cfg).code_size(cfg)), "float32")
    draw = model.generate if preset.startswith("gan") else model.decode
    images = [draw(z, tf.constant([label])).numpy() for label in range(3)]
    assert not np.allclose(images[0], images[1]) and not np.allclose(images[1], images[2])
    np.testing.assert_array_equal(draw(z, tf.constant([1])).numpy(), images[1])


def test_the_conditional_discriminator_loss_on_a_hand_checked_case():
    """D sees only the label planes: logit = 5 x 5 x k[y] + b. With real and fake drawn for
    the same labels, the BCE is mean softplus(-l_y) over the reals plus mean softplus(l_y) over
    the fakes, whatever the images."""
    cfg = _conditional("gan-mnist")
    generator = kinds.build(cfg).generator
    discriminator = keras.Sequential(
        [keras.Input((28, 28, 4)), keras.layers.Flatten(), keras.layers.Dense(1)]
    )
    per_class = np.array([0.01, -0.02, 0.03], "float32")
    kernel = np.zeros((28, 28, 4), "float32")
    kernel[..., 1:] = per_class
    discriminator.layers[-1].kernel.assign(kernel.reshape(-1, 1))
    discriminator.layers[-1].bias.assign([0.1])
    model = models.DCGAN(generator, discriminator, options=cfg.gan, seed=0)
    model.compile(g_optimizer=keras.optimizers.SGD(0.0), d_optimizer=keras.optimizers.SGD(0.0))
    real = tf.random.uniform((6, 28, 28, 1), -1.0, 1.0)
    labels = tf.constant([0, 1, 2, 2, 1, 0])
    logs = model.train_step((real, labels))
    logit = 28 * 28 * per_class[labels.numpy()] + 0.1
    softplus = np.log1p(np.exp(-np.abs(logit))) + np.maximum(logit, 0)
    expected = np.mean(softplus - logit) + np.mean(softplus)  # softplus(-l) = softplus(l) - l
    assert float(logs["d_loss"]) == pytest.approx(expected, rel=1e-5)
    assert float(logs["d_real"]) == pytest.approx(np.mean(1 / (1 + np.exp(-logit))), rel=1e-5)


def test_the_cvae_elbo_on_a_hand_checked_case():
    """The encoder sees only the label planes: mean_j = 784 w[y, j], log-variance -30 (so z
    is the mean); the decoder only the label's code: every pixel's logit is beta[y]. Then
    ELBO = sum over pixels of x log s(beta_y) + (1 - x) log(1 - s(beta_y)) - KL(N(m, e^-30) ||
    N(0, I)), whatever the image."""
    cfg = config.override(_conditional("vae-mnist"), ["vae.prior_components=0"])
    encoder = keras.Sequential(
        [keras.Input((28, 28, 4)), keras.layers.Flatten(), keras.layers.Dense(4)]
    )
    w = np.array([[0.001, -0.002], [0.0, 0.003], [-0.001, 0.0]], "float32")
    kernel = np.zeros((28, 28, 4, 4), "float32")
    kernel[:, :, 1:, :2] = w
    encoder.layers[-1].kernel.assign(kernel.reshape(-1, 4))
    encoder.layers[-1].bias.assign([0.0, 0.0, -30.0, -30.0])
    decoder = keras.Sequential(
        [keras.Input((5,)), keras.layers.Dense(784), keras.layers.Reshape((28, 28, 1))]
    )
    beta = np.array([-1.0, 0.5, 2.0], "float32")
    weights = np.zeros((5, 784), "float32")
    weights[2:] = beta[:, None]
    decoder.layers[0].kernel.assign(weights)
    decoder.layers[0].bias.assign(np.zeros(784, "float32"))
    model = models.VAE(encoder, decoder, options=cfg.vae, seed=0)
    x = (np.random.default_rng(1).random((3, 28, 28, 1)) > 0.6).astype("float32")
    labels = np.array([2, 0, 1])
    elbo, _, _ = model.elbo_terms(x, tf.constant(labels))
    for i, y in enumerate(labels):
        ones = x[i].sum()
        sig = 1 / (1 + np.exp(-beta[y]))
        log_px = ones * np.log(sig) + (784 - ones) * np.log(1 - sig)
        mean = 784 * w[y]
        kl = 0.5 * np.sum(np.exp(-30.0) + mean**2 - 1 + 30.0)
        assert float(elbo[i]) == pytest.approx(log_px - kl, rel=1e-4)


def test_a_cvae_elbo_depends_on_the_label_it_is_given():
    cfg = _conditional("vae-mnist")
    model = kinds.build(cfg)
    x = kinds.of(cfg).pixels(cfg).scale(data.synthetic(8).train[:4])
    elbos = [model.elbo_terms(x, tf.fill((4,), label))[0].numpy() for label in range(3)]
    assert not np.allclose(elbos[0], elbos[1])


@pytest.mark.parametrize(("preset", "changes"), LABEL_INPUTS)
def test_a_conditional_model_trains_on_labelled_batches_and_keeps_its_keras_file(
    tmp_path, preset, changes
):
    cfg = _conditional(preset, **changes)
    model = kinds.build(cfg)
    ds = data.synthetic(40)
    batches = pipeline(ds.train, cfg, training=True, labels=ds.train_labels % 3)
    logs = model.fit(batches, epochs=1, verbose=0, shuffle=False).history
    assert all(np.isfinite(v[-1]) for v in logs.values())
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert loaded.options.classes == 3
    z = np.zeros((2, kinds.of(cfg).code_size(cfg)), "float32")
    draw = (
        (lambda m: m.generate(z, tf.constant([0, 2])))
        if preset.startswith("gan")
        else (lambda m: m.decode(z, tf.constant([0, 2])))
    )
    np.testing.assert_allclose(draw(loaded).numpy(), draw(model).numpy(), rtol=1e-5, atol=1e-6)
    x = kinds.of(cfg).pixels(cfg).scale(ds.test[:2])
    read = (
        (lambda m: m.discriminate(x, tf.constant([1, 2])))
        if preset.startswith("gan")
        else (lambda m: m.encode(x, tf.constant([1, 2]))[0])
    )
    np.testing.assert_allclose(read(loaded).numpy(), read(model).numpy(), rtol=1e-5, atol=1e-6)


def test_a_projection_discriminator_adds_the_labels_embedding_dotted_with_the_features():
    """logit(x, y) = head(f(x)) + <e_y, f(x)>: two labels differ by <e_a - e_b, f(x)>, and
    the image enters without label planes."""
    cfg = _conditional("gan-mnist", disc_label="projection")
    model = kinds.build(cfg)
    net = model.discriminator
    assert net.inputs[0].shape[-1] == 1  # the image's own channel only
    embedding = net.get_layer("label_embedding")
    rng = np.random.default_rng(0)
    table = rng.standard_normal(embedding.kernel.shape).astype("float32")
    embedding.kernel.assign(table)
    flatten = next(layer for layer in net.layers if isinstance(layer, keras.layers.Flatten))
    features = keras.Model(net.inputs[0], flatten.output)
    x = tf.random.uniform((4, 28, 28, 1), -1.0, 1.0)
    f = features(x).numpy()
    a, b = model.discriminate(x, tf.fill((4,), 0)), model.discriminate(x, tf.fill((4,), 2))
    expected = f @ (table[0] - table[2])
    np.testing.assert_allclose((a - b).numpy()[:, 0], expected, rtol=1e-4, atol=1e-4)
    from_arrays = model.discriminate(x.numpy(), np.zeros(4, "int32"))  # arrays, as a grid's
    np.testing.assert_allclose(from_arrays.numpy(), a.numpy(), rtol=1e-5, atol=1e-6)


def test_an_encoder_that_reads_the_label_after_its_features_shifts_by_the_labels_weights():
    """With the label joined to the flattened features, the encoder's outputs for two labels
    differ by the last layer's weights of those labels, whatever the image."""
    cfg = _conditional("vae-mnist", encoder_label="features")
    model = kinds.build(cfg)
    assert model.encoder.inputs[0].shape[-1] == 1
    head = model.encoder.layers[-1]
    x = kinds.of(cfg).pixels(cfg).scale(data.synthetic(8).train[:4])
    shift = [np.concatenate(model.encode(x, tf.fill((4,), y)), axis=-1) for y in (0, 1)]
    weights = head.kernel.numpy()[-3:]  # the one-hot's rows, after the features'
    np.testing.assert_allclose(
        shift[1] - shift[0], np.broadcast_to(weights[1] - weights[0], shift[0].shape), atol=1e-5
    )
    recon = model.reconstruct(np.asarray(x), np.array([0, 1, 2, 0]))  # arrays, as a grid's
    assert recon.shape == x.shape


def test_a_conditional_model_without_labels_is_refused_and_samples_draw_them():
    cfg = _conditional("gan-mnist")
    model = kinds.build(cfg)
    with pytest.raises(ValueError, match="give labels"):
        model.generate(np.zeros((1, cfg.gan.noise_dim), "float32"))
    assert model.sample(5).shape == (5, 28, 28, 1)


def test_a_conditional_model_on_unlabelled_images_is_a_one_line_error():
    cfg = config.preset("gan-anime")
    with pytest.raises(UserError, match="anime images have none"):
        config.override(cfg, ["gan.classes=10"])
    with pytest.raises(UserError, match="vae.classes must be >= 0"):
        config.override(config.preset("vae-mnist"), ["vae.classes=-1"])
    with pytest.raises(UserError, match="gan.disc_label must be one of planes, projection"):
        config.override(config.preset("cgan-mnist"), ["gan.disc_label=embedding"])
    with pytest.raises(UserError, match="vae.encoder_label must be one of planes, features"):
        config.override(config.preset("cvae-mnist"), ["vae.encoder_label=late"])


@pytest.mark.parametrize("preset", ["cgan-mnist", "cvae-mnist"])
def test_a_conditional_run_draws_a_row_per_class_and_is_scored_by_the_digit_asked_for(
    tmp_path, mnist_dir, monkeypatch, capsys, preset
):
    """...and evaluate prints that score beside its floor; the report gives it a column and
    draws its confusion matrix (a CVAE's latent figures decode as one class)."""
    import json

    from PIL import Image

    from gan_vae_tf import evaluate, report, train
    from helpers import train_args

    monkeypatch.setenv("GAN_VAE_TF_CACHE", str(tmp_path / "cache"))
    run = tmp_path / "run"
    assert train.main(train_args(preset, mnist_dir, run, "--set", "train.sample_grid=3")) == 0
    grid = np.asarray(Image.open(run / "samples" / "epoch_0002.png"))
    assert grid.shape[0] == 2 * (10 * 30 + 2)  # ten rows of digits (the PNG is drawn at 2x)
    args = [str(run), "--quality-num", "16", "--iwae-k", "3", "--iwae-images", "4"]
    assert evaluate.main(args) == 0
    fidelity = json.loads((run / "metrics.json").read_text())["quality"]["class_fidelity"]
    for side in ("model", "real_floor"):
        assert 0.0 <= fidelity[side]["accuracy"] <= 1.0
        assert np.array(fidelity[side]["confusion"]).sum() == 16
    assert len(fidelity["model"]["per_class"]) == 10
    printed = capsys.readouterr().out
    assert "class asked for   accuracy" in printed and "real-data floor   accuracy" in printed
    out = tmp_path / "report"
    assert report.main([str(run), "--out", str(out)]) == 0
    tables = (out / "tables.md").read_text()
    assert "| class asked for (classifier) |" in tables and "lowest" in tables
    assert "### The class-conditional recipes" in tables and "reproduction" not in tables
    assert (out / "run" / "class_confusion.png").stat().st_size > 0
    if preset == "cvae-mnist":
        assert (out / "run" / "latent_walk_pc1_pc2_class0.png").stat().st_size > 0
        assert (out / "run" / "reconstructions.png").stat().st_size > 0


@pytest.fixture(scope="module")
def conditional_runs(tmp_path_factory) -> dict:
    from gan_vae_tf import train
    from helpers import train_args, write_mnist

    root = tmp_path_factory.mktemp("conditional")
    mnist = write_mnist(root / "data" / "mnist")
    runs = {}
    for preset in ("cgan-mnist", "cvae-mnist"):
        runs[preset] = root / preset
        assert train.main(train_args(preset, mnist, runs[preset], epochs=1)) == 0
    return runs


@pytest.mark.parametrize("preset", ["cgan-mnist", "cvae-mnist"])
def test_generate_and_the_api_draw_the_class_asked_for(conditional_runs, tmp_path, preset):
    import gan_vae_tf
    from gan_vae_tf import generate

    run = gan_vae_tf.load(conditional_runs[preset])
    z = run.codes(4, seed=1)
    sevens = run.sample(4, seed=1, label=7)
    np.testing.assert_array_equal(sevens, run.decode(z, label=[7, 7, 7, 7]))
    assert not np.array_equal(sevens, run.sample(4, seed=1, label=2))
    np.testing.assert_array_equal(run.labels(12), np.arange(12) % 10)  # every class in turn
    out = tmp_path / "sevens.npy"
    assert (
        generate.main(
            [
                str(conditional_runs[preset]),
                "--num",
                "4",
                "--seed",
                "1",
                "--label",
                "7",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    np.testing.assert_array_equal(np.load(out), sevens)
    assert (
        generate.main(
            [
                str(conditional_runs[preset]),
                "--num",
                "10",
                "--label",
                "0-9",
                "--out",
                str(tmp_path / "all.npy"),
            ]
        )
        == 0
    )
    np.testing.assert_array_equal(np.load(tmp_path / "all.npy"), run.sample(10, label=range(10)))
    with pytest.raises(UserError, match="labels must be in 0-9"):
        run.sample(2, label=10)


def test_a_label_for_an_unconditional_run_or_a_cvae_reconstruction_without_one_is_refused(
    conditional_runs,
):
    import gan_vae_tf

    unconditional = gan_vae_tf.load(Path(__file__).parent / "fixtures" / "vae-mnist-06a94bc")
    with pytest.raises(UserError, match="not class-conditional"):
        unconditional.sample(2, label=3)
    cvae = gan_vae_tf.load(conditional_runs["cvae-mnist"])
    digits = np.zeros((2, 28, 28, 1), np.uint8)
    with pytest.raises(UserError, match="needs the images' labels"):
        cvae.reconstruct(digits)
    seen, recon = cvae.reconstruct(digits, label=4)
    assert recon.shape == (2, 28, 28, 1)


@pytest.mark.slow
def test_the_exported_conditional_sampler_takes_labels(conditional_runs, tmp_path, capsys):
    import gan_vae_tf
    from gan_vae_tf import export

    out = tmp_path / "saved"
    assert export.main([str(conditional_runs["cgan-mnist"]), str(out)]) == 0
    assert (
        "serving_default(codes, labels) and sample(count, seed, label)" in capsys.readouterr().out
    )
    served = tf.saved_model.load(str(out))
    run = gan_vae_tf.load(conditional_runs["cgan-mnist"])
    z = run.codes(3, seed=2)
    images = served.signatures["serving_default"](
        codes=tf.constant(z), labels=tf.constant([1, 5, 9], tf.int32)
    )["images_uint8"].numpy()
    np.testing.assert_array_equal(images, run.decode(z, label=[1, 5, 9]))
    fives = served.signatures["sample"](
        count=tf.constant(3), seed=tf.constant(2), label=tf.constant(5)
    )["images_uint8"].numpy()
    np.testing.assert_array_equal(fives, run.sample(3, seed=2, label=5))
