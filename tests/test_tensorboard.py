"""TensorBoard logs: every run writes its scalars and sample grid per epoch, with the epoch as
step, and a resumed run continues them without writing any step twice."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest
import tensorflow as tf

from gan_vae_tf import callbacks, train
from gan_vae_tf.rundir import RunDir
from helpers import train_args


def read_events(folder: Path) -> dict[str, list[int]]:
    """tag -> the steps it was written at, in file order, from every event file in `folder`."""
    steps: dict[str, list[int]] = defaultdict(list)
    for path in callbacks.event_files(folder):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                steps[value.tag].append(event.step)
    return dict(steps)


@pytest.mark.slow
def test_a_gan_run_logs_scalars_and_sample_grids_per_epoch_and_a_resume_continues_them(
    tmp_path, mnist_dir
):
    run = tmp_path / "run"
    assert train.main(train_args("gan-mnist", mnist_dir, run, epochs=2)) == 0
    events = read_events(RunDir(run).tensorboard)
    assert set(events) == {
        "train/d_loss",
        "train/g_loss",
        "train/d_real",
        "train/d_fake",
        "speed/images_per_second",
        "sample_grid",
    }
    assert all(steps == [1, 2] for steps in events.values())
    assert train.main(["--resume", str(run), "--epochs", "3", "--progress", "none"]) == 0
    events = read_events(RunDir(run).tensorboard)
    assert all(steps == [1, 2, 3] for steps in events.values()), events


def test_a_vae_run_logs_train_and_test_elbo(tmp_path, mnist_dir):
    run = tmp_path / "run"
    assert train.main(train_args("vae-mnist", mnist_dir, run, epochs=1)) == 0
    events = read_events(RunDir(run).tensorboard)
    assert {
        "train/loss",
        "train/elbo",
        "test/elbo",
        "test/kl",
        "speed/images_per_second",
        "sample_grid",
    } <= set(events)


def test_events_after_the_checkpoint_are_dropped_before_a_resume(tmp_path):
    """A kill between the epoch's TensorBoard write and its checkpoint: the resumed run redoes
    that epoch, and its step must appear once."""
    folder = tmp_path / "tb"
    writer = tf.summary.create_file_writer(str(folder))
    with writer.as_default():
        for step in (1, 2, 3):
            tf.summary.scalar("train/d_loss", float(step), step=step)
    writer.close()
    callbacks.truncate_events(folder, 2)
    assert read_events(folder) == {"train/d_loss": [1, 2]}
    writer = tf.summary.create_file_writer(str(folder))
    with writer.as_default():
        tf.summary.scalar("train/d_loss", 3.5, step=3)
    writer.close()
    assert sorted(read_events(folder)["train/d_loss"]) == [1, 2, 3]


def test_a_record_cut_short_by_a_kill_is_dropped(tmp_path):
    folder = tmp_path / "tb"
    writer = tf.summary.create_file_writer(str(folder))
    with writer.as_default():
        for step in (1, 2):
            tf.summary.scalar("train/d_loss", float(step), step=step)
    writer.close()
    path = callbacks.event_files(folder)[0]
    path.write_bytes(path.read_bytes()[:-7])
    callbacks.truncate_events(folder, 5)
    assert read_events(folder) == {"train/d_loss": [1]}


class _FailingWriter:
    """A summary writer whose every write and close fails as a full disk would."""

    def as_default(self, step=None):
        raise tf.errors.ResourceExhaustedError(None, None, "No space left on device")

    def close(self):
        raise tf.errors.ResourceExhaustedError(None, None, "No space left on device")


def test_a_failing_event_write_stops_the_run_as_a_storage_error(tmp_path):
    log = callbacks.TensorBoardLog(tmp_path / "tb", 64, callbacks.HistoryCSV(tmp_path))
    log.writer = _FailingWriter()
    with pytest.raises(OSError, match="TensorBoard events .*No space left"):
        log.on_epoch_end(0, {"d_loss": 0.5})


def test_a_failing_close_only_warns_so_it_never_hides_the_error_that_ended_the_run(tmp_path):
    log = callbacks.TensorBoardLog(tmp_path / "tb", 64, callbacks.HistoryCSV(tmp_path))
    log.writer = _FailingWriter()
    with pytest.warns(UserWarning, match="TensorBoard events may be incomplete"):
        log.close()


def test_serving_a_folder_that_does_not_exist_is_one_line_and_exit_2(tmp_path, capsys):
    from gan_vae_tf import board

    assert board.main([str(tmp_path / "nowhere")]) == 2
    assert (
        capsys.readouterr().err
        == f"error: {tmp_path / 'nowhere'} is not a folder of runs (train one first, e.g. make train-gan-mnist)\n"
    )
