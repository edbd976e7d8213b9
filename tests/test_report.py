import json

import numpy as np
import pytest
from PIL import Image

from gan_vae_tf import (
    classifier,
    config,
    data,
    evaluate,
    evaluation,
    kinds,
    precision,
    report,
    train,
)
from helpers import pipeline, tiny_config, train_args, write_mnist


def test_classifier_is_trained_once_then_loaded_from_the_cache(tmp_path, monkeypatch):
    ds = data.synthetic(120)
    labels = (ds.train.reshape(len(ds.train), -1).mean(axis=1) > ds.train.mean()).astype(np.uint8)
    test_labels = (ds.test.reshape(len(ds.test), -1).mean(axis=1) > ds.train.mean()).astype(
        np.uint8
    )
    built = []
    network = classifier.network
    monkeypatch.setattr(classifier, "network", lambda *a, **k: built.append(a) or network(*a, **k))
    first, acc1 = classifier.train_or_load(
        "toy", ds.train, labels, ds.test, test_labels, epochs=1, cache_dir=tmp_path
    )
    cached = list((tmp_path / "classifiers").glob("*.keras"))
    assert len(cached) == 1 and len(built) == 1
    written = cached[0].stat().st_mtime_ns
    second, acc2 = classifier.train_or_load(
        "toy", ds.train, labels, ds.test, test_labels, epochs=1, cache_dir=tmp_path
    )
    # Loaded, not retrained: a seeded retrain would give the same accuracy, but it would build
    # a second network and rewrite the file.
    assert len(built) == 1 and cached[0].stat().st_mtime_ns == written
    assert list((tmp_path / "classifiers").iterdir()) == cached
    assert acc1 == acc2 and 0.0 <= acc1 <= 1.0
    feats, probs = classifier.features(second, ds.test)
    assert feats.shape == (len(ds.test), 128) and probs.shape == (len(ds.test), 2)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_iwae_bound_is_at_least_the_elbo_and_grows_with_k():
    cfg = tiny_config("vae-mnist", batch_size=16)
    model = kinds.build(cfg)
    images = data.synthetic(400).train
    model.fit(pipeline(images, cfg, training=True), epochs=2, verbose=0, shuffle=False)
    x = kinds.of(cfg).pixels(cfg).scale(images[:64])
    bounds = {}
    for k in (1, 10, 100):
        log_w = model.log_importance_weights(x, k).numpy()
        assert log_w.shape == (64, k)
        bounds[k] = evaluate_bound(log_w)
        elbo = log_w.mean(axis=1)
        assert np.all(evaluate_bound(log_w, per_image=True) >= elbo - 1e-4)
    assert bounds[1] < bounds[10] < bounds[100]


def test_evaluate_iwae_reduces_known_log_weights_to_their_bound_and_elbo():
    """A stand-in model whose log-weights are known in closed form: image i (the share f_i of
    its pixels on) gets log w_ij = 10 f_i + log j for j = 1..k. Then the IWAE bound of image i is
    10 f_i + log((k + 1) / 2) and its ELBO 10 f_i + log(k!) / k, so any slip in batching,
    k or the reduction shows."""
    import math

    import tensorflow as tf

    class KnownWeights:
        def log_importance_weights(self, x, k, labels=None):
            share = tf.reduce_mean(x, axis=[1, 2, 3])[:, None]
            return 10.0 * share + tf.math.log(tf.range(1, k + 1, dtype=tf.float32))[None, :]

    images = np.zeros((10, 4, 4, 1), np.uint8)
    for i in range(10):
        images[i].flat[: i + 1] = 255
    share = np.arange(1, 11) / 16.0
    k = 5
    pixels = data.PixelRange(0.0, 1.0, binarize=True)
    result = evaluation.iwae(KnownWeights(), images, pixels, k)  # batches of 8 and 2 images
    assert (result["k"], result["images"]) == (k, 10)
    assert result["iwae_nats"] == pytest.approx(
        np.mean(10 * share) + math.log((k + 1) / 2), rel=1e-5
    )
    assert result["elbo_same_images_nats"] == pytest.approx(
        np.mean(10 * share) + math.log(math.factorial(k)) / k, rel=1e-5
    )
    assert result["iwae_stderr"] == pytest.approx(
        np.std(10 * share, ddof=1) / math.sqrt(10), rel=1e-4
    )


def evaluate_bound(log_w, per_image=False):
    from gan_vae_tf import metrics

    per = metrics.iwae_bound(log_w)
    return per if per_image else float(np.mean(per))


@pytest.fixture(scope="module")
def two_tiny_runs(tmp_path_factory):
    """A trained and evaluated tiny DCGAN and VAE, made once for the tests that only read them."""
    root = tmp_path_factory.mktemp("two_tiny_runs")
    mnist_dir = write_mnist(root / "data" / "mnist")
    runs = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GAN_VAE_TF_CACHE", str(root / "cache"))
        for preset in ("gan-mnist", "vae-mnist"):
            run = root / preset
            assert train.main(train_args(preset, mnist_dir, run)) == 0
            assert (
                evaluate.main(
                    [str(run), "--quality-num", "24", "--iwae-k", "5", "--iwae-images", "4"]
                )
                == 0
            )
            runs.append(run)
    return runs


def test_evaluate_writes_quality_beside_the_real_data_floor(two_tiny_runs):
    for run in two_tiny_runs:
        q = json.loads((run / "metrics.json").read_text())["quality"]
        assert set(q["model"]) >= {
            "fid",
            "kid",
            "kid_std",
            "precision",
            "recall",
            "classifier_score",
        }
        # 32 held-out images: two disjoint real sets of 16, so 16 samples, not the 24 asked for.
        assert q["model"].keys() == q["real_floor"].keys() and q["n"] == 16
        assert "skipped" in q["inception"]
    vae = json.loads((two_tiny_runs[1] / "metrics.json").read_text())
    assert vae["iwae"]["k"] == 5 and vae["iwae"]["images"] == 4
    # Strictly above: with k = 5 draws that differ, log-mean-exp exceeds the mean (k = 1 would tie).
    assert vae["iwae"]["iwae_nats"] > vae["iwae"]["elbo_same_images_nats"]


def test_report_builds_tables_figures_and_html_from_two_runs(two_tiny_runs, tmp_path):
    out = tmp_path / "report"
    assert report.main([*map(str, two_tiny_runs), "--out", str(out)]) == 0
    tables = (out / "tables.md").read_text()
    assert "## mnist" in tables and "DCGAN" in tables and "VAE" in tables and "floor" in tables
    assert "### The default recipes: GAN and VAE on one scale" in tables
    assert "reproduction" not in tables  # no run of the reports' settings was given
    assert precision.cpu_name() in tables
    for name in ("samples.gif", "loss_curves.png", "generator.png", "discriminator.png"):
        assert (out / "gan-mnist" / name).stat().st_size > 0
    for name in (
        "latent_walk_pc1_pc2.png",  # the default's latent is 16-d
        "latent_scatter.png",
        "interpolations.png",
        "reconstructions.png",
        "encoder.png",
        "decoder.png",
    ):
        assert (out / "vae-mnist" / name).stat().st_size > 0
    page = (out / "report.html").read_text()
    assert page.count("data:image/") >= 12 and "<table>" in page


def test_report_refuses_a_run_that_was_not_evaluated(tmp_path, capsys):
    (tmp_path / "config.json").write_text("{}")
    assert report.main([str(tmp_path), "--out", str(tmp_path / "r")]) == 2
    assert "evaluate" in capsys.readouterr().err


@pytest.mark.slow
def test_inception_features_load_from_a_user_supplied_weights_file(tmp_path):
    """No download: the weights come from a file (here a randomly initialised InceptionV3)."""
    import keras

    from gan_vae_tf import quality

    path = tmp_path / "inception_notop.weights.h5"
    keras.applications.InceptionV3(
        weights=None, include_top=False, pooling="avg", input_shape=(299, 299, 3)
    ).save_weights(path)
    rng = np.random.default_rng(0)
    real, ref, fake = (rng.integers(0, 255, (6, 32, 32, 1), dtype=np.uint8) for _ in range(3))
    result = quality.inception_quality(str(path), real, ref, fake, batch_size=3)
    assert result["feature_space"].startswith("InceptionV3")
    assert set(result["model"]) == {
        "fid",
        "kid",
        "kid_std",
        "kid_subsets",
        "kid_subset_size",
        "precision",
        "recall",
    }
    assert np.isfinite(result["model"]["fid"]) and result["model"]["fid"] >= 0


@pytest.mark.parametrize(
    ("latent", "plane"), [(2, "latent_manifold.png"), (16, "latent_walk_pc1_pc2.png")]
)
def test_latent_figures_suit_the_latent_size(tmp_path, monkeypatch, latent, plane):
    """Latent 2 is drawn as the decoded plane itself; a wider latent as the plane of its two
    main directions, and its test means projected on them."""
    monkeypatch.setenv("GAN_VAE_TF_CACHE", str(tmp_path / "cache"))
    run = tmp_path / "run"
    args = train_args("vae-mnist", write_mnist(tmp_path / "data" / "mnist"), run, epochs=1)
    assert train.main([*args, "--latent-dim", str(latent)]) == 0
    cfg = config.Config.from_json(run / "config.json")
    figures = report.figures(report.Run(run, cfg.to_dict(), {}, {}), tmp_path / "figures")
    names = {path.name for path in figures}
    other = {"latent_manifold.png", "latent_walk_pc1_pc2.png"} - {plane}
    assert plane in names and "latent_scatter.png" in names and not names & other
    with Image.open(tmp_path / "figures" / plane) as image:
        side = 20 if latent == 2 else 11
        assert image.size == (side * 28, side * 28)
