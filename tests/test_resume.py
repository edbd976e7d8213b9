"""Nothing lost: kill -9 and resume, Ctrl-C, non-finite losses, determinism, corrupt checkpoints."""
import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from gan_vae_tf import callbacks, train
from gan_vae_tf.errors import NonFiniteLoss
from helpers import train_args

ROOT = Path(__file__).resolve().parents[1]


def _args(preset, data_dir, run, epochs, *extra):
    return train_args(preset, data_dir, run, *extra, epochs=epochs, verbose=2)


def _spawn(args):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    # A suite started in the background (`make test &`) passes on SIGINT as ignored, and Python
    # then never raises KeyboardInterrupt; the child gets the default disposition back.
    return subprocess.Popen([sys.executable, "-m", "gan_vae_tf.train", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


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

    assert train.main(["--resume", str(run), "--verbose", "0"]) == 0
    assert _epochs(run) == list(range(1, epochs + 1))
    pngs = sorted(p.name for p in (run / "samples").glob("epoch_*.png"))
    assert pngs == [f"epoch_{e:04d}.png" for e in range(1, epochs + 1)]
    assert (run / "model.keras").is_file() and not (run / "checkpoint.tmp").exists()


@pytest.mark.slow
def test_same_seed_with_op_determinism_gives_identical_losses(tmp_path, mnist_dir):
    runs = [tmp_path / "a", tmp_path / "b"]
    procs = [_spawn(_args("vae-mnist", mnist_dir, r, 2, "--deterministic", "--seed", "7")) for r in runs]
    for p in procs:
        assert p.wait(timeout=300) == 0, p.stderr.read()
    first, second = (_losses(r) for r in runs)
    assert first == second and len(first) == 2


def test_resume_of_a_finished_run_trains_nothing_more(tmp_path, mnist_dir):
    run = tmp_path / "run"
    assert train.main(_args("gan-mnist", mnist_dir, run, 2)) == 0
    before = (run / "history.csv").read_text()
    assert train.main(["--resume", str(run), "--verbose", "0"]) == 0
    assert (run / "history.csv").read_text() == before
    assert train.main(["--resume", str(run), "--epochs", "3", "--verbose", "0"]) == 0
    assert _epochs(run) == [1, 2, 3]


def test_corrupt_checkpoint_is_a_clear_error_and_nothing_is_deleted(tmp_path, mnist_dir, capsys):
    run = tmp_path / "run"
    assert train.main(_args("gan-mnist", mnist_dir, run, 1)) == 0
    data_file = next((run / "checkpoint").glob("state.data-*"))
    data_file.write_bytes(b"garbage")
    before = sorted(p.name for p in run.rglob("*"))
    assert train.main(["--resume", str(run), "--epochs", "2", "--verbose", "0"]) == 2
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


def test_exploding_training_exits_3_and_keeps_the_last_checkpoint(tmp_path, mnist_dir, capsys,
                                                                 monkeypatch):
    from gan_vae_tf import checkpoint

    run = tmp_path / "run"
    assert train.main(_args("vae-mnist", mnist_dir, run, 1)) == 0
    state = (run / "checkpoint" / "state.index").read_bytes()
    restore = checkpoint.RunState.restore

    def restore_then_explode(self, run_dir):
        done = restore(self, run_dir)
        self.model.vae_optimizer.learning_rate.assign(1e30)  # the weights blow up at once
        return done

    monkeypatch.setattr(checkpoint.RunState, "restore", restore_then_explode)
    assert train.main(["--resume", str(run), "--epochs", "3", "--verbose", "0"]) == 3
    err = capsys.readouterr().err
    assert "at epoch 2, step" in err and "last good checkpoint" in err
    assert (run / "checkpoint" / "state.index").read_bytes() == state
    assert _epochs(run) == [1]


@pytest.mark.slow
def test_ctrl_c_saves_a_checkpoint_and_says_how_to_resume(tmp_path, mnist_dir):
    run, epochs = tmp_path / "run", 40
    proc = _spawn(_args("gan-mnist", mnist_dir, run, epochs))
    deadline = time.time() + 240
    while time.time() < deadline and not ((run / "history.csv").exists() and len(_epochs(run)) >= 2):
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert f"--resume {run}" in err
    assert (run / "checkpoint" / "state.index").is_file()
    assert train.main(["--resume", str(run), "--verbose", "0"]) == 0
    assert _epochs(run) == list(range(1, epochs + 1))


@pytest.mark.parametrize("preset", ["gan-mnist-report", "gan-mnist", "vae-mnist"])
def test_checkpoint_restores_weights_optimizer_and_random_streams(tmp_path, preset):
    from gan_vae_tf import checkpoint, data, models
    from helpers import tiny_config

    cfg = tiny_config(preset)
    batches = data.pipeline(data.synthetic(40).train, cfg, training=True)
    model = models.build(cfg)
    model.fit(batches, epochs=1, verbose=0, shuffle=False)
    state = checkpoint.RunState(model, {"noise": np.ones((2, 3), "float32")})
    assert len(state.rng) >= {"gan-mnist-report": 3, "gan-mnist": 1, "vae-mnist": 2}[preset]  # model + sampler/dropouts (the default GAN has no dropout)
    state.save(tmp_path, checkpoint.Position(1))
    saved_rng = [v.numpy().copy() for v in state.rng]
    saved_weights = [w.numpy().copy() for w in model.weights]
    model.fit(batches, epochs=1, verbose=0, shuffle=False)  # moves weights, optimizer and RNG on

    fresh = models.build(cfg)
    restored = checkpoint.RunState(fresh, {"noise": np.zeros((2, 3), "float32")})
    assert restored.restore(tmp_path) == checkpoint.Position(1)
    assert all(np.array_equal(a, v.numpy()) for a, v in zip(saved_rng, restored.rng, strict=True))
    assert all(np.array_equal(a, w.numpy()) for a, w in zip(saved_weights, fresh.weights, strict=True))
    assert np.array_equal(restored.fixed["noise"].numpy(), np.ones((2, 3)))
    optimizer = fresh.g_optimizer if preset.startswith("gan") else fresh.vae_optimizer
    assert int(optimizer.iterations.numpy()) == len(list(batches))
