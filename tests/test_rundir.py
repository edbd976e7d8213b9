"""The run directory's layout, history file, atomic writes, `latest` and the cache folder."""

from __future__ import annotations

import os
import time

import pytest

from gan_vae_tf import rundir
from gan_vae_tf.errors import UserError


def test_file_names_are_the_ones_earlier_runs_wrote(tmp_path):
    """Run directories written before rundir existed must still evaluate and resume."""
    run = rundir.RunDir(tmp_path)
    names = {
        "config": "config.json",
        "history": "history.csv",
        "samples": "samples",
        "loss_curves": "loss_curves.png",
        "model": "model.keras",
        "summary": "summary.json",
        "metrics": "metrics.json",
        "checkpoint": "checkpoint",
        "checkpoint_tmp": "checkpoint.tmp",
        "checkpoint_old": "checkpoint.old",
    }
    for attribute, name in names.items():
        assert getattr(run, attribute) == tmp_path / name, attribute
    assert run.sample_png(7) == tmp_path / "samples" / "epoch_0007.png"
    assert run.network("generator") == tmp_path / "generator.keras"


def test_history_rows_append_read_back_as_columns_and_truncate(tmp_path):
    run = rundir.RunDir(tmp_path)
    for epoch in (1, 2, 3):
        run.append_history({"epoch": epoch, "seconds": 0.5, "loss": 10.0 - epoch})
    assert run.read_history() == {"epoch": [1, 2, 3], "seconds": [0.5] * 3, "loss": [9.0, 8.0, 7.0]}
    run.truncate_history(2)
    assert run.read_history()["epoch"] == [1, 2]
    assert run.history.read_text().splitlines()[0] == "epoch,seconds,loss"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["history.csv"]


def test_truncating_a_missing_history_does_nothing(tmp_path):
    rundir.RunDir(tmp_path).truncate_history(3)
    assert list(tmp_path.iterdir()) == []


def test_atomic_path_replaces_the_file_whole_or_not_at_all(tmp_path):
    final = tmp_path / "sub" / "curves.png"
    with rundir.atomic_path(final) as tmp:
        assert tmp.parent == final.parent and tmp.suffix == ".png" and tmp.name.startswith(".")
        tmp.write_text("new")
        assert final.exists() is False  # nothing visible until the block ends
    assert final.read_text() == "new"
    with pytest.raises(RuntimeError), rundir.atomic_path(final) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed while writing")
    assert final.read_text() == "new"
    assert [p.name for p in final.parent.iterdir()] == ["curves.png"]


def test_write_json_is_indented_with_a_final_newline(tmp_path):
    path = rundir.write_json(tmp_path / "m.json", {"a": 1})
    assert path.read_text() == '{\n  "a": 1\n}\n'


def test_prepare_refuses_a_run_then_overwrite_removes_only_run_files(tmp_path):
    run = rundir.prepare(tmp_path / "r", "gan-mnist", overwrite=False)
    assert run.samples.is_dir()
    rundir.write_json(run.config, {})
    run.append_history({"epoch": 1})
    run.sample_png(1).write_bytes(b"png")
    run.checkpoint.mkdir()
    run.tensorboard.mkdir()  # the old run's events would sit beside the new run's same steps
    (run.path / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="already holds a run"):
        rundir.prepare(run.path, "gan-mnist", overwrite=False)
    rundir.prepare(run.path, "gan-mnist", overwrite=True)
    assert not run.history.exists() and not run.checkpoint.exists()
    assert not run.tensorboard.exists()
    assert run.sample_pngs() == [] and (run.path / "notes.txt").read_text() == "mine"


def test_prepare_without_out_makes_a_timestamped_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = rundir.prepare(None, "vae-mnist", overwrite=False)
    assert run.path.parent == rundir.DEFAULT_ROOT and run.path.name.startswith("vae-mnist-")


def test_latest_is_the_newest_finished_run_of_each_preset(tmp_path):
    def finished(name, preset, age):
        run = rundir.RunDir(tmp_path / name)
        rundir.write_json(run.config, {"preset": preset})
        run.model.write_bytes(b"")
        stamp = time.time() - age
        os.utime(run.model, (stamp, stamp))
        return run.path

    finished("gan-old", "gan-mnist", 100)
    new_gan = finished("gan-new", "gan-mnist", 10)
    vae = finished("vae", "vae-mnist", 50)
    unfinished = rundir.RunDir(tmp_path / "gan-running")
    rundir.write_json(unfinished.config, {"preset": "gan-mnist"})
    assert rundir.latest(tmp_path) == sorted([new_gan, vae])


def test_cache_dir_prefers_the_argument_then_the_environment_then_home(tmp_path, monkeypatch):
    monkeypatch.setenv(rundir.CACHE_ENV, str(tmp_path / "env"))
    assert rundir.cache_dir(tmp_path / "arg") == tmp_path / "arg"
    assert rundir.cache_dir() == tmp_path / "env"
    monkeypatch.delenv(rundir.CACHE_ENV)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert rundir.cache_dir() == tmp_path / "home" / ".cache" / "gan_vae_tf"
