"""Progress off a terminal: a line at least every 30 s with step/total, images/s and the ETA."""

from __future__ import annotations

import io

from gan_vae_tf import callbacks, train
from helpers import train_args


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def drive(
    cb: callbacks.ProgressLines,
    clock: FakeClock,
    steps: int,
    step_seconds: float,
    epoch: int = 0,
    first_batch: int = 0,
) -> None:
    cb.on_epoch_begin(epoch)
    for batch in range(first_batch, steps):
        clock.now += step_seconds
        cb.on_train_batch_end(batch, {"d_loss": 1.25})
    cb.on_epoch_end(epoch, {"d_loss": 1.0})


def test_a_line_at_least_every_30_seconds_with_rate_and_eta():
    clock, out = FakeClock(), io.StringIO()
    cb = callbacks.ProgressLines(epochs=5, batch_size=64, clock=clock, stream=out)
    cb.set_params({"steps": 100, "epochs": 5})
    drive(cb, clock, steps=100, step_seconds=2.0)  # 200 s in all, 32 img/s
    lines = out.getvalue().splitlines()
    assert lines[0] == "epoch 1/5 step 15/100, 32 img/s, epoch ETA 2:50; d_loss 1.25"
    assert [line.split(",")[0] for line in lines[:-1]] == [
        f"epoch 1/5 step {s}/100" for s in (15, 30, 45, 60, 75, 90)
    ]
    assert lines[-1] == "epoch 1/5 done in 3:20; d_loss 1"


def test_no_line_between_intervals_and_slow_steps_give_one_each():
    clock, out = FakeClock(), io.StringIO()
    cb = callbacks.ProgressLines(epochs=1, batch_size=8, interval=30, clock=clock, stream=out)
    cb.set_params({"steps": 10})
    drive(cb, clock, steps=10, step_seconds=1.0)
    assert out.getvalue().splitlines() == ["epoch 1/1 done in 0:10; d_loss 1"]
    out.seek(0)
    out.truncate()
    drive(cb, clock, steps=3, step_seconds=45.0)  # each slow step passes the interval
    assert len(out.getvalue().splitlines()) == 4


def test_a_resumed_epoch_counts_from_where_it_stopped():
    """The trainer's second fit() runs only the rest of the epoch: Keras counts its batches from
    0 and its `steps` are the remainder; the line shows the position in the whole epoch."""
    clock, out = FakeClock(), io.StringIO()
    cb = callbacks.ProgressLines(
        epochs=3, batch_size=10, steps_per_epoch=100, clock=clock, stream=out, first_step=60
    )
    cb.set_params({"steps": 40})
    drive(cb, clock, steps=40, step_seconds=1.0, epoch=1)
    assert (
        out.getvalue().splitlines()[0]
        == "epoch 2/3 step 90/100, 10 img/s, epoch ETA 0:10; d_loss 1.25"
    )
    assert cb.first_step == 0  # the next epoch starts at its beginning


def test_training_off_a_terminal_prints_progress_lines(tmp_path, mnist_dir, capsys):
    args = train_args("gan-mnist", mnist_dir, tmp_path / "run", progress=None)
    assert train.main(args) == 0  # pytest's stdout is not a terminal
    out = capsys.readouterr().out
    assert "epoch 1/2 done in 0:" in out and "epoch 2/2 done in 0:" in out and "d_loss" in out
    assert "\r" not in out and "━" not in out  # no progress bar in a log
