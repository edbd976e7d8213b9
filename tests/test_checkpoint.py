"""Mid-epoch checkpoints and exact resume, in-process: the epoch order, the saver's cadence,
stop requests, and a stopped-and-resumed run against an uninterrupted one, bit for bit."""

import csv
import signal

import numpy as np
import pytest
import tensorflow as tf

from gan_vae_tf import checkpoint, data, train
from gan_vae_tf.checkpoint import Position
from gan_vae_tf.errors import Interrupted
from helpers import pipeline, tiny_config, train_args


def test_epoch_order_depends_only_on_seed_and_epoch():
    a, b = data.EpochOrder(50, 8, seed=3), data.EpochOrder(50, 8, seed=3, epoch=9)
    assert np.array_equal(a.permutation(4), b.permutation(4))
    assert not np.array_equal(a.permutation(4), a.permutation(5))
    assert not np.array_equal(a.permutation(4), data.EpochOrder(50, 8, seed=4).permutation(4))
    batches = np.concatenate([a.indices(4, s) for s in range(a.steps)])
    assert a.steps == 6 and len(set(batches.tolist())) == 48  # no image twice in an epoch
    with pytest.raises(IndexError):
        a.indices(4, 6)


def test_pipeline_from_a_mid_epoch_step_yields_exactly_the_unseen_batches():
    cfg = tiny_config("gan-mnist")
    images = np.arange(40, dtype=np.uint8).reshape(40, 1, 1, 1) * 6
    order = data.EpochOrder(40, 8, seed=0, epoch=2)

    def pixels(ds):
        return [tuple(np.sort(b.numpy().ravel())) for b in ds]

    whole = pixels(pipeline(images, cfg, training=True, order=order))
    rest = pixels(pipeline(images, cfg, training=True, order=order, first_step=3))
    assert len(whole) == 5 and rest == whole[3:]
    order.epoch = 3  # what the Checkpoint callback does as an epoch begins
    assert pixels(pipeline(images, cfg, training=True, order=order)) != whole


class RecordingState:
    """Stands in for a RunState: records the positions it is asked to save."""

    def __init__(self):
        self.saved: list[Position] = []
        self.trackers_restored = 0

    def save(self, run_dir, position):
        self.saved.append(position)

    def restore_trackers(self):
        self.trackers_restored += 1


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def _saver(every=10.0, start=None, stop=None, steps=5):
    start = Position(0) if start is None else start
    state, clock = RecordingState(), FakeClock()
    order = data.EpochOrder(steps * 4, 4, seed=0)
    saver = checkpoint.Checkpoint("unused", state, order, every, start, stop, clock)
    return saver, state, clock


def test_saves_inside_an_epoch_at_the_first_step_after_the_interval_and_at_its_end():
    saver, state, clock = _saver(every=10.0)
    saver.on_train_begin()
    saver.on_epoch_begin(0)
    for batch, now in enumerate([4.0, 9.0, 11.0, 15.0, 23.0]):
        clock.now = now
        saver.on_train_batch_end(batch)
    saver.on_epoch_end(0)
    assert [(p.epoch, p.step) for p in state.saved] == [(0, 3), (1, 0)]
    assert state.saved[0].seconds == 11.0  # carried into the epoch's row on resume


def test_a_resumed_epoch_counts_steps_from_where_it_stopped_and_restores_its_trackers():
    saver, state, clock = _saver(every=1.0, start=Position(2, 3, 7.5))
    saver.on_train_begin()
    saver.on_epoch_begin(2)
    assert saver.order.epoch == 2 and state.trackers_restored == 1
    clock.now = 2.0
    saver.on_train_batch_end(0)
    assert state.saved == [Position(2, 4, 9.5)]
    saver.on_epoch_end(2)
    saver.on_epoch_begin(3)
    assert state.trackers_restored == 1 and saver.position == Position(3, 0, 0.0)


def test_a_stop_request_saves_at_the_next_step_boundary_and_raises():
    stop = checkpoint.StopRequest()
    saver, state, clock = _saver(every=0.0, stop=stop)
    saver.on_train_begin()
    saver.on_epoch_begin(0)
    saver.on_train_batch_end(0)
    stop.signum = signal.SIGTERM
    with pytest.raises(Interrupted) as info:
        saver.on_train_batch_end(1)
    assert info.value.saved and info.value.signum == signal.SIGTERM
    assert [(p.epoch, p.step) for p in state.saved] == [(0, 2)]


def test_a_stop_on_the_last_step_is_left_to_the_epoch_end_save():
    stop = checkpoint.StopRequest()
    saver, state, clock = _saver(every=0.0, stop=stop, steps=2)
    saver.on_train_begin()
    saver.on_epoch_begin(0)
    stop.signum = signal.SIGINT
    saver.on_train_batch_end(1)  # the last batch: its files come first, then the save
    assert state.saved == []
    with pytest.raises(Interrupted):
        saver.on_epoch_end(0)
    assert state.saved == [Position(1)]


def _args(preset, data_dir, run, *extra):
    return train_args(preset, data_dir, run, "--deterministic", "--seed", "3", *extra)


def _rows(run):
    with (run / "history.csv").open() as f:
        return [{k: v for k, v in r.items() if k != "seconds"} for r in csv.DictReader(f)]


def _checkpoint_tensors(run) -> dict[str, np.ndarray]:
    reader = tf.train.load_checkpoint(str(run / "checkpoint" / "state"))
    skip = ("_CHECKPOINTABLE_OBJECT_GRAPH", "seconds/")
    return {
        name: reader.get_tensor(name)
        for name in reader.get_variable_to_shape_map()
        if not name.startswith(skip)
    }


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["gan-mnist", "vae-mnist", "cgan-mnist", "cvae-mnist"])
def test_a_run_stopped_mid_epoch_and_resumed_equals_an_uninterrupted_run_bit_for_bit(
    tmp_path, mnist_dir, preset, monkeypatch, capsys
):
    # Three steps per compiled call: the stop lands between calls, as it does in a default run.
    spe = ("--steps-per-execution", "3")
    assert train.main(_args(preset, mnist_dir, tmp_path / "whole", *spe)) == 0

    batch_end = checkpoint.Checkpoint.on_train_batch_end

    def sigterm_at_step_3(self, batch, logs=None):
        if self.position.epoch == 0 and batch == 2:
            self.stop.signum = signal.SIGTERM
        batch_end(self, batch, logs)

    monkeypatch.setattr(checkpoint.Checkpoint, "on_train_batch_end", sigterm_at_step_3)
    cut = tmp_path / "cut"
    assert train.main(_args(preset, mnist_dir, cut, *spe)) == 143
    stopped = checkpoint.saved_position(cut)
    assert (stopped.epoch, stopped.step, stopped.steps_per_epoch) == (0, 3, 6)
    assert f"--resume {cut}" in capsys.readouterr().err
    monkeypatch.undo()
    assert train.main(["--resume", str(cut), "--progress", "none"]) == 0

    whole, resumed = _checkpoint_tensors(tmp_path / "whole"), _checkpoint_tensors(cut)
    assert whole.keys() == resumed.keys() and len(whole) > 20
    assert all(np.array_equal(whole[k], resumed[k]) for k in whole), [
        k for k in whole if not np.array_equal(whole[k], resumed[k])
    ]
    assert _rows(cut) == _rows(tmp_path / "whole") and len(_rows(cut)) == 2


def test_checkpoint_every_saves_inside_epochs(tmp_path, mnist_dir, monkeypatch):
    positions = []
    save = checkpoint.RunState.save

    def recording_save(self, run_dir, position):
        positions.append((position.epoch, position.step))
        return save(self, run_dir, position)

    monkeypatch.setattr(checkpoint.RunState, "save", recording_save)
    run = tmp_path / "run"
    every_step = ("--checkpoint-every", "1e-9", "--steps-per-execution", "1")
    assert train.main(_args("gan-mnist", mnist_dir, run, *every_step)) == 0
    assert positions == [(0, s) for s in range(1, 6)] + [(1, 0)] + [(1, s) for s in range(1, 6)] + [
        (2, 0)
    ]
    assert checkpoint.saved_position(run) == Position(2)


def test_workers_save_and_stop_together_when_any_one_asks():
    asked = []

    def another_worker_was_signalled_at_step_3(stop, due):
        asked.append((stop, due))  # asked at epoch begin, then after steps 1, 2, 3
        return (len(asked) == 4, due or len(asked) == 3)

    saver, state, clock = _saver(every=100.0)
    saver.agree = another_worker_was_signalled_at_step_3
    saver.on_train_begin()
    saver.on_epoch_begin(0)  # asks once: nothing
    saver.on_train_batch_end(0)  # nothing
    saver.on_train_batch_end(1)  # another worker's clock says save: this one saves too
    with pytest.raises(Interrupted) as info:
        saver.on_train_batch_end(2)  # another worker got SIGTERM: save and stop
    assert info.value.signum == signal.SIGTERM and info.value.saved
    assert [(p.epoch, p.step) for p in state.saved] == [(0, 2), (0, 3)]
    assert asked == [(False, False)] * 4


@pytest.mark.parametrize(
    "tf_config, chief, size",
    [
        (None, True, 1),
        ({"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 0}}, True, 2),
        ({"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 1}}, False, 2),
        (
            {
                "cluster": {"chief": ["c:1"], "worker": ["a:1"]},
                "task": {"type": "worker", "index": 0},
            },
            False,
            2,
        ),
        (
            {
                "cluster": {"chief": ["c:1"], "worker": ["a:1"]},
                "task": {"type": "chief", "index": 0},
            },
            True,
            2,
        ),
    ],
)
def test_only_the_chief_of_a_multiworker_cluster_writes_the_run_directory(
    monkeypatch, tf_config, chief, size
):
    import json

    from gan_vae_tf import distribute

    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", json.dumps(tf_config))
    assert distribute.is_chief("multiworker") is chief
    assert distribute.cluster_size("multiworker") == size
    assert distribute.is_chief("default") and distribute.cluster_size("mirrored") == 1
