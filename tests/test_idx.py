import numpy as np
import pytest

from gan_vae_tf.errors import UserError
from gan_vae_tf.idx import read_idx, read_idx_pair
from helpers import write_idx


@pytest.mark.parametrize("name", ["images-idx3-ubyte", "images-idx3-ubyte.gz"])
def test_reads_back_what_was_written_raw_or_gzipped(tmp_path, name):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    assert np.array_equal(read_idx(write_idx(tmp_path / name, array)), array)


def test_bad_magic_number_is_a_clear_error(tmp_path):
    path = tmp_path / "x.idx"
    path.write_bytes(b"\x12\x34\x08\x01" + b"\x00" * 8)
    with pytest.raises(UserError, match="bad magic number"):
        read_idx(path)


def test_truncated_file_is_a_clear_error(tmp_path):
    path = write_idx(tmp_path / "x-idx3-ubyte", np.zeros((10, 28, 28), np.uint8))
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(UserError, match="truncated"):
        read_idx(path)


def test_truncated_gzip_stream_is_a_clear_error(tmp_path):
    path = write_idx(tmp_path / "x-idx3-ubyte.gz", np.ones((50, 28, 28), np.uint8))
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(UserError, match="x-idx3-ubyte.gz"):
        read_idx(path)


def test_trailing_bytes_are_an_error(tmp_path):
    path = write_idx(tmp_path / "x-idx1-ubyte", np.zeros(5, np.uint8))
    path.write_bytes(path.read_bytes() + b"\x00")
    with pytest.raises(UserError, match="longer than its header"):
        read_idx(path)


def test_images_and_labels_of_different_lengths_do_not_pair(tmp_path):
    images = write_idx(tmp_path / "i-idx3-ubyte.gz", np.zeros((4, 28, 28), np.uint8))
    labels = write_idx(tmp_path / "l-idx1-ubyte.gz", np.zeros(3, np.uint8))
    with pytest.raises(UserError, match="do not belong together"):
        read_idx_pair(images, labels)


def test_label_file_in_place_of_images_is_rejected(tmp_path):
    labels = write_idx(tmp_path / "l-idx1-ubyte.gz", np.zeros(3, np.uint8))
    with pytest.raises(UserError, match="does not hold uint8 images"):
        read_idx_pair(labels, labels)


def test_missing_file_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="cannot read"):
        read_idx(tmp_path / "nope.gz")
