"""Behaviour of decoding a user's image folder into the on-disk uint8 cache."""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gan_vae_tf.errors import UserError
from gan_vae_tf.imagefolder import (
    IMAGE_EXTENSIONS,
    FolderImages,
    list_image_files,
    load_image_folder,
)

ANIME_FACES = Path(__file__).resolve().parents[2] / "shared/data/anime-faces"
RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)
GOOD = [
    "a_wide.jpg",
    "b_tall.png",
    "c_gray.png",
    "d_rgba.png",
    "e_anim.gif",
    "f_plain.bmp",
    "i_red_centre.png",
    "sub/deeper/j_nested.png",
]
BAD = ["g_corrupt.jpg", "h_truncated.jpg"]


def _noise(width: int, height: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def _jpeg_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=90)
    return buf.getvalue()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A folder with every kind of file a user might drop in, good and bad."""
    root = tmp_path / "faces"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "a_wide.jpg").write_bytes(_jpeg_bytes(_noise(40, 30, 1)))
    _noise(17, 50, 2).save(root / "b_tall.png")
    _noise(24, 24, 3).convert("L").save(root / "c_gray.png")
    Image.new("RGBA", (30, 20), (*BLUE, 128)).save(root / "d_rgba.png")
    Image.new("RGB", (20, 20), RED).save(
        root / "e_anim.gif", save_all=True, append_images=[Image.new("RGB", (20, 20), GREEN)]
    )
    _noise(33, 21, 4).save(root / "f_plain.bmp")
    (root / "g_corrupt.jpg").write_bytes(np.random.default_rng(5).bytes(2000))
    full = _jpeg_bytes(_noise(64, 48, 6))
    (root / "h_truncated.jpg").write_bytes(full[: len(full) // 2])
    centre = Image.new("RGB", (60, 20), BLUE)
    centre.paste(Image.new("RGB", (20, 20), RED), (20, 0))
    centre.save(root / "i_red_centre.png")
    _noise(25, 19, 7).save(root / "sub" / "deeper" / "j_nested.png")
    (root / "notes.txt").write_text("not an image")
    return root


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


@pytest.fixture
def decode_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts traces of tf.io.decode_image; each decoding run traces it once."""
    import tensorflow as tf

    calls: list[int] = []
    real: Callable = tf.io.decode_image

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(tf.io, "decode_image", counting)
    return calls


def _load(root: Path, cache: Path, **kwargs) -> FolderImages:
    """Load while swallowing the expected skipped-files warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_image_folder(root, cache_dir=cache, **{"image_size": 16, **kwargs})


def _skip_warnings(caught: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in caught if "could not be decoded" in str(w.message)]


def _row(result: FolderImages, name: str) -> np.ndarray:
    return result.images[[Path(p).name for p in result.paths].index(name)]


def test_list_image_files_is_recursive_sorted_and_ignores_other_files(folder: Path) -> None:
    (folder / ".hidden.jpg").write_bytes(b"resource fork")
    (folder / "UPPER.JPEG").write_bytes(_jpeg_bytes(_noise(8, 8, 9)))
    listed = list_image_files(folder)
    assert listed == sorted(listed)
    assert [os.path.relpath(p, folder) for p in listed] == sorted(
        [*GOOD, *BAD, "UPPER.JPEG"], key=lambda r: os.path.join(str(folder), r)
    )
    assert ".webp" in IMAGE_EXTENSIONS and ".txt" not in IMAGE_EXTENSIONS


def test_decodes_every_format_to_uint8_squares_of_the_requested_size(
    folder: Path, cache: Path
) -> None:
    result = _load(folder, cache)
    assert result.images.shape == (len(GOOD), 16, 16, 3)
    assert result.images.dtype == np.uint8
    assert 0 <= result.images.min() < result.images.max() <= 255
    assert [os.path.relpath(p, folder) for p in result.paths] == GOOD
    assert all(os.path.isabs(p) for p in result.paths)


def test_images_are_a_read_only_memmap(folder: Path, cache: Path) -> None:
    images = _load(folder, cache).images
    assert isinstance(images, np.memmap)
    with pytest.raises(ValueError):
        images[0, 0, 0, 0] = 1


def test_corrupt_and_truncated_files_are_skipped_with_one_warning(
    folder: Path, cache: Path
) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = load_image_folder(folder, 16, cache_dir=cache)
    assert sorted(Path(p).name for p in result.skipped) == ["g_corrupt.jpg", "h_truncated.jpg"]
    messages = _skip_warnings(caught)
    assert len(messages) == 1
    assert "skipped 2 of 10" in messages[0]
    assert "g_corrupt.jpg" in messages[0] and "h_truncated.jpg" in messages[0]
    assert next(w for w in caught if "could not be decoded" in str(w.message)).filename == __file__


def test_no_warning_when_every_file_decodes(folder: Path, cache: Path) -> None:
    for name in BAD:
        (folder / name).unlink()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = load_image_folder(folder, 16, cache_dir=cache)
    assert result.skipped == ()
    assert _skip_warnings(caught) == []


def test_centre_crop_keeps_the_red_centre_and_channel_order(folder: Path, cache: Path) -> None:
    red = _row(_load(folder, cache), "i_red_centre.png").astype(int)
    assert np.all(red[..., 0] >= 250) and np.all(red[..., 1:] <= 5)


def test_grayscale_becomes_rgb_with_equal_channels(folder: Path, cache: Path) -> None:
    gray = _row(_load(folder, cache), "c_gray.png")
    assert np.array_equal(gray[..., 0], gray[..., 1]) and np.array_equal(gray[..., 1], gray[..., 2])
    assert gray.min() < gray.max()


def test_rgba_drops_alpha_and_gif_gives_its_first_frame(folder: Path, cache: Path) -> None:
    result = _load(folder, cache)
    assert np.array_equal(_row(result, "d_rgba.png"), np.broadcast_to(np.uint8(BLUE), (16, 16, 3)))
    assert np.array_equal(_row(result, "e_anim.gif"), np.broadcast_to(np.uint8(RED), (16, 16, 3)))


def test_one_channel_gives_grayscale_for_every_format(folder: Path, cache: Path) -> None:
    result = _load(folder, cache, channels=1)
    assert result.images.shape == (len(GOOD), 16, 16, 1)
    red = _row(result, "i_red_centre.png").astype(int)
    assert np.all(np.abs(red - 76) <= 2)


def test_limit_decodes_only_the_first_files(
    folder: Path, cache: Path, decode_calls: list[int]
) -> None:
    result = _load(folder, cache, limit=3)
    assert result.images.shape == (3, 16, 16, 3)
    assert list(result.paths) == list_image_files(folder)[:3]
    assert result.skipped == ()
    assert np.array_equal(result.images, _load(folder, cache).images[:3])


def test_second_call_uses_the_cache_without_decoding(
    folder: Path, cache: Path, decode_calls: list[int]
) -> None:
    first = _load(folder, cache)
    assert decode_calls
    decode_calls.clear()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        second = load_image_folder(folder, 16, cache_dir=cache)
    assert decode_calls == []
    assert np.array_equal(np.asarray(first.images), np.asarray(second.images))
    assert (second.paths, second.skipped) == (first.paths, first.skipped)
    assert len(_skip_warnings(caught)) == 1
    files = sorted(p.name for p in (cache / "folders").iterdir())
    assert len(files) == 2 and files[0].endswith(".json") and files[1].endswith(".npy")


def test_cache_dir_defaults_to_the_environment_variable(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GAN_VAE_TF_CACHE", str(tmp_path / "env-cache"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        load_image_folder(folder, 16, limit=2)
    assert len(list((tmp_path / "env-cache" / "folders").glob("*.npy"))) == 1


def test_adding_a_file_invalidates_the_cache(folder: Path, cache: Path) -> None:
    before = _load(folder, cache)
    _noise(12, 12, 8).save(folder / "k_new.png")
    after = _load(folder, cache)
    assert after.images.shape[0] == before.images.shape[0] + 1
    assert after.paths[-2].endswith("k_new.png")


def test_rewriting_a_file_invalidates_the_cache(folder: Path, cache: Path) -> None:
    _load(folder, cache)
    Image.new("RGB", (20, 20), GREEN).save(folder / "b_tall.png")
    assert np.array_equal(
        _row(_load(folder, cache), "b_tall.png"), np.broadcast_to(np.uint8(GREEN), (16, 16, 3))
    )


def test_a_cache_without_its_json_or_with_a_damaged_array_is_not_trusted(
    folder: Path, cache: Path, decode_calls: list[int]
) -> None:
    first = np.asarray(_load(folder, cache).images).copy()
    (json_path,) = (cache / "folders").glob("*.json")
    json_path.unlink()
    decode_calls.clear()
    assert np.array_equal(_load(folder, cache).images, first)
    assert decode_calls

    (npy_path,) = (cache / "folders").glob("*.npy")
    with open(npy_path, "r+b") as fh:
        fh.truncate(npy_path.stat().st_size // 2)
    decode_calls.clear()
    assert np.array_equal(_load(folder, cache).images, first)
    assert decode_calls


def test_animated_webp_is_skipped_instead_of_crashing(tmp_path: Path, cache: Path) -> None:
    root = tmp_path / "webp"
    root.mkdir()
    frames = [Image.new("RGB", (20, 20), RED), Image.new("RGB", (20, 20), GREEN)]
    try:
        frames[0].save(root / "anim.webp", save_all=True, append_images=frames[1:])
    except (OSError, ValueError, KeyError) as exc:
        pytest.skip(f"Pillow cannot write animated WebP: {exc}")
    frames[0].save(root / "still.webp")
    result = _load(root, cache)
    assert [Path(p).name for p in result.paths] == ["still.webp"]
    assert [Path(p).name for p in result.skipped] == ["anim.webp"]


def test_missing_folder_raises_user_error_naming_it(tmp_path: Path, cache: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(UserError, match="does not exist") as info:
        load_image_folder(missing, 16, cache_dir=cache)
    assert str(missing) in str(info.value) and "\n" not in str(info.value)


def test_file_instead_of_folder_raises_user_error_naming_it(folder: Path, cache: Path) -> None:
    path = folder / "a_wide.jpg"
    with pytest.raises(UserError, match="not a folder") as info:
        load_image_folder(path, 16, cache_dir=cache)
    assert str(path) in str(info.value)


def test_folder_without_images_raises_user_error_naming_it(tmp_path: Path, cache: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no images here")
    with pytest.raises(UserError, match="no image files") as info:
        load_image_folder(empty, 16, cache_dir=cache)
    assert str(empty) in str(info.value)


def test_folder_of_only_corrupt_images_raises_user_error_naming_it(
    tmp_path: Path, cache: Path
) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    for i in range(3):
        (bad / f"{i}.jpg").write_bytes(np.random.default_rng(i).bytes(500))
    with pytest.raises(UserError, match="could be decoded") as info:
        load_image_folder(bad, 16, cache_dir=cache)
    assert str(bad) in str(info.value)
    assert not list((cache / "folders").iterdir())


@pytest.mark.parametrize("kwargs", [{"image_size": 0}, {"channels": 4}, {"limit": 0}])
def test_invalid_settings_raise_user_error(folder: Path, cache: Path, kwargs: dict) -> None:
    with pytest.raises(UserError):
        load_image_folder(folder, cache_dir=cache, **{"image_size": 16, **kwargs})


@pytest.mark.skipif(not ANIME_FACES.is_dir(), reason=f"{ANIME_FACES} not present")
def test_loads_a_slice_of_the_anime_faces_sample(cache: Path) -> None:
    result = load_image_folder(ANIME_FACES, 64, limit=64, cache_dir=cache)
    assert result.images.shape == (64, 64, 64, 3)
    assert result.skipped == ()
