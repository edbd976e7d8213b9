"""Nothing lost: kill -9 and resume, SIGTERM and Ctrl-C, a full disk, non-finite losses,
determinism, corrupt checkpoints."""

import csv
import json
import resource
import signal
import time

import numpy as np
import pytest

from gan_vae_tf import callbacks, kinds, precision, train
from gan_vae_tf.errors import NonFiniteLoss
from helpers import ROOT, pipeline, train_args, train_process

TF_NOISE = ("WARNING: All log messages before absl", "I0000 ", "W0000 ", "E0000 ")  # C++ start-up


def _args(preset, data_dir, run, epochs, *extra):
    return train_args(preset, data_dir, run, *extra, epochs=epochs, progress="epoch")


def _spawn(args):
    return train_process(args, wait=False)


def _epochs(run):
    with (run / "history.csv").open() as f:
        return [int(r["epoch"]) for r in csv.DictReader(f)]


def _losses(run):
    with (run / "history.csv").open() as f:
        return [{k: v for k, v in r.items() if k != "seconds"} for r in csv.DictReader(f)]


@pytest.mark.slow
def test_sigkill_mid_run_then_resume_keeps_every_epoch_exactly_once(tmp_path, mnist_dir):
    run, epochs = tmp_path / "run", 40
    proc = _spawn(_args("gan-mnist", mnist_dir, run, epochs))
    deadline = time.time() + 240
    while time.time() < deadline:
        if (run / "history.csv").exists() and len(_epochs(run)) >= 3:
            break
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.05)
    time.sleep(0.13)  # land somewhere inside an epoch, not on a boundary
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = _epochs(run)
    assert 3 <= len(killed_at) < epochs

    assert train.main(["--resume", str(run), "--progress", "none"]) == 0
    assert _epochs(run) == list(range(1, epochs + 1))
    pngs = sorted(p.name for p in (run / "samples").glob("epoch_*.png"))
    assert pngs == [f"epoch_{e:04d}.png" for e in range(1, epochs + 1)]
    assert (run / "model.keras").is_file() and not (run / "checkpoint.tmp").exists()


@pytest.mark.slow
def test_same_seed_with_op_determinism_gives_identical_losses(tmp_path, mnist_dir):
    runs = [tmp_path / "a", tmp_path / "b"]
    procs = [
        _spawn(_args("vae-mnist", mnist_dir, r, 2, "--deterministic", "--seed", "7")) for r in runs
    ]
    for p in procs:
        assert p.wait(timeout=300) == 0, p.stderr.read()
    first, second = (_losses(r) for r in runs)
    assert first == second and len(first) == 2


@pytest.mark.slow
def test_resume_of_a_finished_run_trains_nothing_more(tmp_path, mnist_dir):
    run = tmp_path / "run"
    assert train.main(_args("gan-mnist", mnist_dir, run, 2)) == 0
    before = (run / "history.csv").read_text()
    assert train.main(["--resume", str(run), "--progress", "none"]) == 0
    assert (run / "history.csv").read_text() == before
    assert train.main(["--resume", str(run), "--epochs", "3", "--progress", "none"]) == 0
    assert _epochs(run) == [1, 2, 3]


def test_a_run_extended_on_resume_keeps_its_new_length_for_the_next_resume(tmp_path, mnist_dir):
    run = tmp_path / "run"
    assert train.main(_args("gan-mnist", mnist_dir, run, 1)) == 0
    started = json.loads((run / "config.json").read_text())["run"]
    assert train.main(["--resume", str(run), "--epochs", "2", "--progress", "none"]) == 0
    record = json.loads((run / "config.json").read_text())
    assert record["train"]["epochs"] == 2 and record["run"] == started
    assert train.build_config(train.parse_args(["--resume", str(run)])).train.epochs == 2
    assert train.main(["--resume", str(run), "--epochs", "1", "--progress", "none"]) == 0
    assert json.loads((run / "config.json").read_text())["train"]["epochs"] == 2  # ran 2 already


def test_resume_keeps_the_precision_the_run_started_with(tmp_path, mnist_dir, monkeypatch):
    run = tmp_path / "run"
    assert train.main(_args("gan-mnist", mnist_dir, run, 1)) == 0
    started = json.loads((run / "config.json").read_text())["run"]["precision"]
    other = "mixed_bfloat16" if started == "float32" else "float32"
    monkeypatch.setattr(precision, "resolve", lambda p, **kw: (other, "a new rule"))
    assert train.main(["--resume", str(run), "--epochs", "2", "--progress", "none"]) == 0
    assert json.loads((run / "summary.json").read_text())["precision"] == started
    assert _epochs(run) == [1, 2]


def test_corrupt_checkpoint_is_a_clear_error_and_nothing_is_deleted(tmp_path, mnist_dir, capsys):
    run = tmp_path / "run"
    assert train.main(_args("gan-mnist", mnist_dir, run, 1)) == 0
    data_file = next((run / "checkpoint").glob("state.data-*"))
    data_file.write_bytes(b"garbage")
    before = sorted(p.name for p in run.rglob("*"))
    assert train.main(["--resume", str(run), "--epochs", "2", "--progress", "none"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "corrupt" in err and "\n" not in err
    assert sorted(p.name for p in run.rglob("*")) == before


def test_resume_needs_a_run_directory(tmp_path, capsys):
    assert train.main(["--resume", str(tmp_path)]) == 2
    assert "not a run directory" in capsys.readouterr().err


def test_non_finite_loss_stops_with_epoch_and_step_named():
    guard = callbacks.NonFiniteGuard()
    guard.on_epoch_begin(2)
    guard.on_train_batch_end(0, {"loss": 1.0})
    with pytest.raises(NonFiniteLoss, match="loss became nan at epoch 3, step 5"):
        guard.on_train_batch_end(4, {"loss": float("nan")})


def test_exploding_training_exits_3_and_keeps_the_last_checkpoint(
    tmp_path, mnist_dir, capsys, monkeypatch
):
    from gan_vae_tf import checkpoint

    run = tmp_path / "run"
    assert train.main(_args("vae-mnist-report", mnist_dir, run, 1)) == 0  # a constant rate
    state = (run / "checkpoint" / "state.index").read_bytes()
    restore = checkpoint.RunState.restore

    def restore_then_explode(self, run_dir):
        done = restore(self, run_dir)
        self.model.vae_optimizer.learning_rate.assign(1e30)  # the weights blow up at once
        return done

    monkeypatch.setattr(checkpoint.RunState, "restore", restore_then_explode)
    assert train.main(["--resume", str(run), "--epochs", "3", "--progress", "none"]) == 3
    err = capsys.readouterr().err
    assert "at epoch 2, step" in err and "last good checkpoint" in err
    assert (run / "checkpoint" / "state.index").read_bytes() == state
    assert _epochs(run) == [1]


@pytest.mark.slow
def test_ctrl_c_without_out_saves_a_checkpoint_and_names_the_real_run_directory(
    tmp_path, mnist_dir
):
    from gan_vae_tf import checkpoint

    args = _args("gan-mnist", mnist_dir, "unused", 500)  # cannot end before the signal
    args = args[: args.index("--out")] + args[args.index("--out") + 2 :]
    # Run from an empty folder, so the default experiments/runs/<preset>-<time> lands there.
    proc = train_process(args, wait=False, cwd=tmp_path, env={"PYTHONPATH": str(ROOT)})
    runs = tmp_path / "experiments" / "runs"
    deadline = time.time() + 240
    while time.time() < deadline and not list(runs.glob("*/checkpoint")):
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=240)
    assert proc.returncode == 130, err[-2000:]
    (run,) = runs.iterdir()
    assert "RUN_DIR" not in err and err.strip().endswith(f"--resume {run.relative_to(tmp_path)}")
    upto = checkpoint.saved_position(run).epoch + 1
    assert train.main(["--resume", str(run), "--epochs", str(upto), "--progress", "none"]) == 0
    assert _epochs(run) == list(range(1, upto + 1))


@pytest.mark.parametrize("preset", ["gan-mnist-report", "gan-mnist", "vae-mnist"])
def test_checkpoint_restores_weights_optimizer_and_random_streams(tmp_path, preset):
    from gan_vae_tf import checkpoint, data
    from helpers import tiny_config

    cfg = tiny_config(preset)
    batches = pipeline(data.synthetic(40).train, cfg, training=True)
    model = kinds.build(cfg)
    model.fit(batches, epochs=1, verbose=0, shuffle=False)
    state = checkpoint.RunState(model, {"noise": np.ones((2, 3), "float32")})
    assert (
        len(state.rng) >= {"gan-mnist-report": 3, "gan-mnist": 1, "vae-mnist": 2}[preset]
    )  # model + sampler/dropouts (the default GAN has no dropout)
    state.save(tmp_path, checkpoint.Position(1))
    saved_rng = [v.numpy().copy() for v in state.rng]
    saved_weights = [w.numpy().copy() for w in model.weights]
    model.fit(batches, epochs=1, verbose=0, shuffle=False)  # moves weights, optimizer and RNG on

    fresh = kinds.build(cfg)
    restored = checkpoint.RunState(fresh, {"noise": np.zeros((2, 3), "float32")})
    assert restored.restore(tmp_path) == checkpoint.Position(1)
    assert all(np.array_equal(a, v.numpy()) for a, v in zip(saved_rng, restored.rng, strict=True))
    assert all(
        np.array_equal(a, w.numpy()) for a, w in zip(saved_weights, fresh.weights, strict=True)
    )
    assert np.array_equal(restored.grid_inputs["noise"].numpy(), np.ones((2, 3)))
    optimizer = fresh.g_optimizer if preset.startswith("gan") else fresh.vae_optimizer
    assert int(optimizer.iterations.numpy()) == len(list(batches))


def _limited_file_size(limit: int):
    """For a child: files cannot grow past `limit` bytes, and a write that would is an error
    (EFBIG, "File too large") instead of a SIGXFSZ kill: a disk that fills up mid-write."""

    def apply():
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


@pytest.mark.slow
def test_a_checkpoint_write_failing_midway_keeps_the_previous_one_and_exits_4(tmp_path, mnist_dir):
    from gan_vae_tf import checkpoint

    run = tmp_path / "run"
    assert train.main(_args("gan-mnist", mnist_dir, run, 1)) == 0
    before = {p.name: p.read_bytes() for p in (run / "checkpoint").iterdir()}
    data_file = next(n for n in before if n.startswith("state.data"))
    assert len(before[data_file]) > 400_000  # so the limit below falls inside its write

    out = train_process(
        ["--resume", run, "--epochs", "3", "--progress", "none"],
        timeout=300,
        preexec_fn=_limited_file_size(300_000),
    )
    assert out.returncode == 4, out.stderr[-2000:]
    errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "could not write a checkpoint" in errors[0], out.stderr[-2000:]
    assert "File too large" in errors[0] and "the end of epoch 1) is untouched" in errors[0]
    assert f"--resume {run}" in errors[0]
    assert {p.name: p.read_bytes() for p in (run / "checkpoint").iterdir()} == before
    assert not (run / "checkpoint.tmp").exists() and _epochs(run) == [1, 2]  # no train on

    assert checkpoint.saved_position(run) == checkpoint.Position(1)
    assert train.main(["--resume", str(run), "--epochs", "3", "--progress", "none"]) == 0
    assert _epochs(run) == [1, 2, 3]


def _wait_for_checkpoint(proc, run, timeout=600):
    from gan_vae_tf import checkpoint

    deadline = time.time() + timeout
    while time.time() < deadline:
        if checkpoint.latest(run) is not None:
            return
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.05)
    raise AssertionError("no checkpoint appeared")


@pytest.mark.slow
def test_sigterm_saves_mid_epoch_exits_143_and_prints_the_resume_command(tmp_path, mnist_dir):
    from gan_vae_tf import checkpoint

    run = tmp_path / "run"
    # Epochs of 6 steps and a checkpoint every 0.3 s: the signal most likely lands mid-epoch;
    # 500 epochs, so the run cannot end before the signal.
    proc = _spawn(_args("gan-mnist", mnist_dir, run, 500, "--checkpoint-every", "0.005"))
    _wait_for_checkpoint(proc, run)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=240)
    assert proc.returncode == 143, err[-2000:]
    saved = checkpoint.saved_position(run)
    last = err.strip().splitlines()[-1]
    assert last.startswith("SIGTERM: stopped;") and f"at {saved};" in last
    assert last.endswith(f"python -m gan_vae_tf.train --resume {run}")
    upto = saved.epoch + 1  # the epoch it stopped in, finished by the resumed run
    assert train.main(["--resume", str(run), "--epochs", str(upto), "--progress", "none"]) == 0
    assert _epochs(run) == list(range(1, upto + 1))


@pytest.mark.slow
def test_a_second_process_on_a_run_being_trained_fails_at_once(tmp_path, mnist_dir):
    run = tmp_path / "run"
    first = _spawn(_args("gan-mnist", mnist_dir, run, 500))  # still training at the end
    _wait_for_checkpoint(first, run)
    before = sorted(p.name for p in (run / "samples").iterdir())
    for second in (["--resume", str(run)], _args("gan-mnist", mnist_dir, run, 2, "--overwrite")):
        out = train_process(second, timeout=120)
        assert out.returncode == 2, out.stderr[-2000:]
        assert "data:" not in out.stderr and "precision:" not in out.stderr  # nothing loaded
        (err,) = [line for line in out.stderr.splitlines() if not line.startswith(TF_NOISE)]
        assert (
            err.startswith("error:")
            and f"{run} is being trained by another process (pid {first.pid})" in err
        )
    assert set(before) <= {
        p.name for p in (run / "samples").iterdir()
    }  # --overwrite removed nothing
    assert first.poll() is None  # the owner trained on undisturbed
    first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=240) == 143


@pytest.mark.slow
def test_random_sigkills_of_a_real_mnist_run_lose_one_interval_at_most_and_end_bit_identical(
    tmp_path,
):
    """Five SIGKILLs at random moments (inside epochs, during saves, between them), each
    followed by --resume: every kill loses only the work since the last checkpoint, and the
    final weights, optimizer and RNG states and history equal an uninterrupted run's."""
    import random

    from test_checkpoint import _checkpoint_tensors, _rows

    from gan_vae_tf import checkpoint
    from helpers import shared_data

    root = shared_data()
    if root is None or not (root / "mnist").is_dir():
        pytest.skip("needs the real MNIST files in ../shared/data/mnist")
    every = 0.005  # minutes: a checkpoint 0.3 s after the last one, at the next step boundary
    args = _args(
        "gan-mnist",
        root,
        tmp_path / "whole",
        6,
        "--limit",
        "960",
        "--seed",
        "11",
        "--deterministic",
        "--checkpoint-every",
        str(every),
        "--progress",
        "none",
    )
    assert train.main(args) == 0  # the uninterrupted reference: 6 epochs of 60 steps
    run = tmp_path / "killed"
    args[args.index("--out") + 1] = str(run)

    def steps_done(position):
        return position.epoch * 60 + position.step if position else -1

    rng, kills = random.Random(13), []
    proc = _spawn(args)
    # Kill soon after these many steps, all in the first 200 of 360: the run cannot end first.
    for target in sorted(rng.sample(range(1, 200), 5)):
        if kills:  # and only after the resumed process has made progress of its own
            target = max(target, steps_done(kills[-1][0]) + 1)
        deadline = time.time() + 600  # a hang guard only
        while steps_done(checkpoint.saved_position(run)) < target:
            assert proc.poll() is None, proc.stderr.read()[-2000:]
            assert time.time() < deadline, "the run made no progress"
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 0.5))
        assert proc.poll() is None, "the run finished before it was killed five times"
        proc.send_signal(signal.SIGKILL)
        killed_at = time.time()
        proc.wait()
        position = checkpoint.saved_position(run)
        saved_at = float(
            (checkpoint.latest(run) / checkpoint.POSITION)
            .read_text()
            .split('"saved_at": ')[1]
            .split("}")[0]
        )
        kills.append((position, killed_at - saved_at))
        proc = _spawn(["--resume", str(run), "--progress", "none"])  # a kill -9 leaves no lock
    assert proc.wait(timeout=300) == 0, proc.stderr.read()[-2000:]

    positions = [p for p, _ in kills]
    assert len({steps_done(p) for p in positions}) == 5, positions  # five different points
    assert any(p.step > 0 for p in positions), positions  # some inside an epoch
    # Lost work: the time since the last save, at most the interval plus one step, the save
    # itself and an epoch end's files (a PNG and the loss curves) on a shared CPU.
    assert max(lost for _, lost in kills) < every * 60 + 1.5, kills
    assert _epochs(run) == [1, 2, 3, 4, 5, 6]
    assert _rows(run) == _rows(tmp_path / "whole")
    whole, resumed = _checkpoint_tensors(tmp_path / "whole"), _checkpoint_tensors(run)
    assert whole.keys() == resumed.keys()
    assert [k for k in whole if not np.array_equal(whole[k], resumed[k])] == []
