from statistics import NormalDist

import numpy as np
import pytest
from PIL import Image

from gan_vae_tf import plots

SIDE = 6


def brightness_decode(z: np.ndarray) -> np.ndarray:
    """Flat grey images whose level rises with every coordinate of z, through the normal CDF."""
    z = np.asarray(z, dtype=np.float64)
    level = np.mean([[NormalDist().cdf(v) for v in row] for row in z], axis=1)
    return np.broadcast_to(level[:, None, None, None], (len(z), SIDE, SIDE, 1)).astype(np.float32)


def tile_means(image: np.ndarray, rows: int, cols: int, side: int, pad: int) -> np.ndarray:
    out = np.empty((rows, cols))
    for r in range(rows):
        for c in range(cols):
            y, x = pad + r * (side + pad), pad + c * (side + pad)
            out[r, c] = image[y : y + side, x : x + side].mean()
    return out


def test_to_uint8_maps_the_value_range_onto_0_255_and_clips():
    x = np.array([-1.0, 0.0, 1.0, -3.0, 3.0])
    assert plots.to_uint8(x, (-1.0, 1.0)).tolist() == [0, 128, 255, 0, 255]
    assert plots.to_uint8(np.array([0.0, 0.5, 1.0])).tolist() == [0, 128, 255]
    assert plots.to_uint8(x).dtype == np.uint8


def test_grid_places_tiles_between_white_gutters():
    images = np.zeros((5, 4, 4, 1), np.uint8)
    out = plots.grid(images, ncol=3, pad=2)
    assert out.shape == (2 * 6 + 2, 3 * 6 + 2, 1)
    assert out[:2].min() == 255 and out[:, :2].min() == 255
    assert out[2:6, 2:6].max() == 0 and out[8:12, 8:12].max() == 0
    assert out[:, 6:8].min() == 255 and out[6:8].min() == 255
    assert out[8:12, 14:18].min() == 255, "the missing sixth tile stays white"


def test_normal_quantiles_are_symmetric_and_increasing():
    q = plots.normal_quantiles(5)
    assert np.all(np.diff(q) > 0)
    np.testing.assert_allclose(q, -q[::-1], atol=1e-6)
    assert q[0] == pytest.approx(NormalDist().inv_cdf(0.05), abs=1e-5)


def test_latent_manifold_is_n_by_n_tiles_ordered_like_plot_axes(tmp_path):
    path = plots.latent_manifold(brightness_decode, tmp_path / "m.png", n=5)
    image = np.asarray(Image.open(path))
    assert image.shape == (5 * SIDE, 5 * SIDE)
    means = tile_means(image, 5, 5, SIDE, pad=0)
    assert np.all(np.diff(means, axis=1) > 0), "z[0] grows left to right"
    assert np.all(np.diff(means, axis=0) < 0), "z[1] grows bottom to top"


def test_latent_manifold_resizes_tiles_and_keeps_colour(tmp_path):
    def colour(z: np.ndarray) -> np.ndarray:
        return np.repeat(brightness_decode(z), 3, axis=-1)

    path = plots.latent_manifold(colour, tmp_path / "m.png", n=3, image_size=10, pad=1)
    with Image.open(path) as im:
        assert im.size == (3 * 11 + 1, 3 * 11 + 1) and im.mode == "RGB"


def test_latent_manifold_rejects_a_decode_with_the_wrong_batch(tmp_path):
    with pytest.raises(ValueError, match="decode must map"):
        plots.latent_manifold(lambda z: np.zeros((1, 4, 4, 1)), tmp_path / "m.png", n=3)


@pytest.mark.parametrize("dim, labels", [(2, "int"), (5, "int"), (2, None), (3, "float")])
def test_latent_scatter_writes_a_png(tmp_path, dim, labels):
    rng = np.random.default_rng(0)
    means = rng.standard_normal((60, dim))
    y = {"int": rng.integers(0, 10, 60), "float": rng.random(60), None: None}[labels]
    path = plots.latent_scatter(means, y, tmp_path / "s.png", title="test")
    with Image.open(path) as im:
        assert im.format == "PNG" and im.width > 100 and im.height > 100
    assert [p.name for p in tmp_path.iterdir()] == ["s.png"]  # no temporary file left behind


def test_latent_scatter_checks_shapes(tmp_path):
    with pytest.raises(ValueError):
        plots.latent_scatter(np.zeros((4, 1)), None, tmp_path / "s.png")
    with pytest.raises(ValueError):
        plots.latent_scatter(np.zeros((4, 2)), np.zeros(3, int), tmp_path / "s.png")


def test_interpolation_strip_has_a_row_per_pair_and_brightens_along_it(tmp_path):
    start, end = -2.0 * np.ones((3, 4)), 2.0 * np.ones((3, 4))
    start[1] = -1.0
    path = plots.interpolation_strip(brightness_decode, start, end, tmp_path / "i.png", steps=7)
    image = np.asarray(Image.open(path))
    assert image.shape == (3 * (SIDE + 2) + 2, 7 * (SIDE + 2) + 2)
    means = tile_means(image, 3, 7, SIDE, pad=2)
    assert np.all(np.diff(means, axis=1) > 0)
    assert means[1, 0] > means[0, 0], "each row starts at its own code"
    np.testing.assert_allclose(means[:, -1], means[0, -1])


def test_interpolation_strip_accepts_single_codes_and_checks_steps(tmp_path):
    path = plots.interpolation_strip(
        brightness_decode, np.zeros(2), np.ones(2), tmp_path / "i.png", steps=4, pad=0
    )
    assert np.asarray(Image.open(path)).shape == (SIDE, 4 * SIDE)
    with pytest.raises(ValueError):
        plots.interpolation_strip(
            brightness_decode, np.zeros(2), np.ones(2), tmp_path / "i.png", steps=1
        )
    with pytest.raises(ValueError):
        plots.interpolation_strip(brightness_decode, np.zeros(2), np.ones(3), tmp_path / "i.png")


def test_animated_gif_has_a_frame_per_png_and_loops(tmp_path):
    pngs = []
    for i in range(4):
        image = np.full((12 + 2 * (i == 3), 10, 3), 40 * i, np.uint8)
        pngs.append(plots.save_png(image, tmp_path / f"epoch_{i}.png"))
    path = plots.animated_gif(
        pngs, tmp_path / "out" / "train.gif", duration_ms=120, hold_last_ms=900
    )
    with Image.open(path) as gif:
        assert gif.format == "GIF" and gif.n_frames == 4 and gif.size == (10, 14)
        assert gif.info["loop"] == 0
        durations = []
        for k in range(gif.n_frames):
            gif.seek(k)
            durations.append(gif.info["duration"])
    assert durations == [120, 120, 120, 900]
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["train.gif"]  # no temporary file
    with pytest.raises(ValueError):
        plots.animated_gif([], tmp_path / "empty.gif")


def test_principal_axes_find_the_widest_directions_with_a_fixed_sign():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4000, 5)) * np.array([0.1, 3.0, 0.2, 1.0, 0.1]) + 7.0
    centre, directions, stds = plots.principal_axes(-x)  # a flipped cloud: same axes, same signs
    np.testing.assert_allclose(centre, -7.0, atol=0.15)
    np.testing.assert_allclose(np.abs(directions), np.eye(5)[[1, 3]], atol=0.03)
    assert np.all(directions[np.arange(2), [1, 3]] > 0)
    np.testing.assert_allclose(stds, [3.0, 1.0], rtol=0.05)


def test_latent_walk_steps_along_the_first_direction_left_to_right(tmp_path):
    rng = np.random.default_rng(1)
    means = rng.standard_normal((3000, 16)) * np.r_[2.0, 1.0, np.full(14, 0.1)]

    def decode(z):  # brightness rises with z[0] and with z[1]
        return brightness_decode(np.stack([z[:, 0], z[:, 1]], axis=1))

    path = plots.latent_walk(decode, means, tmp_path / "w.png", n=5)
    image = np.asarray(Image.open(path))
    assert image.shape == (5 * SIDE, 5 * SIDE)
    means_of_tiles = tile_means(image, 5, 5, SIDE, pad=0)
    assert np.all(np.diff(means_of_tiles, axis=1) > 0), "PC 1 grows left to right"
    assert np.all(np.diff(means_of_tiles, axis=0) < 0), "PC 2 grows bottom to top"


def test_a_confusion_matrix_figure_needs_a_square_matrix(tmp_path):
    path = plots.confusion_matrix([[5, 1], [0, 6]], tmp_path / "c.png", "two classes")
    assert path.stat().st_size > 0
    with pytest.raises(ValueError, match="square"):
        plots.confusion_matrix([[1, 2, 3]], tmp_path / "bad.png")
