"""A start that fails leaves nothing behind that it created, and never removes what was there."""

from __future__ import annotations

import json

from gan_vae_tf import data, train
from gan_vae_tf.errors import UserError


def test_a_failed_start_leaves_no_empty_run_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # a fresh clone: no experiments/runs/ yet
    assert train.main(["--preset", "gan-mnist", "--data-dir", "/nonexistent"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_failed_start_removes_only_the_folders_it_made(tmp_path, capsys):
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "older-run").mkdir()
    assert (
        train.main(
            [
                "--preset",
                "gan-mnist",
                "--data-dir",
                "/nonexistent",
                "--out",
                str(runs / "new" / "deeper"),
            ]
        )
        == 2
    )
    assert [p.name for p in runs.iterdir()] == ["older-run"]


def test_a_failed_start_keeps_a_folder_that_was_there(tmp_path, mnist_dir, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    # A batch larger than the 96 training images fails after the folder was prepared.
    assert (
        train.main(
            [
                "--preset",
                "gan-mnist",
                "--data-dir",
                str(mnist_dir),
                "--batch-size",
                "512",
                "--out",
                str(mine),
            ]
        )
        == 2
    )
    assert "larger than" in capsys.readouterr().err
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
    assert (mine / "notes.txt").read_text() == "keep me"


def test_a_failed_start_keeps_a_run_another_process_started_beside_it(tmp_path, monkeypatch):
    """On a fresh clone the failed start made experiments/runs/; a run started meanwhile in
    there by another process must survive the clean-up."""
    monkeypatch.chdir(tmp_path)
    sibling = tmp_path / "experiments" / "runs" / "vae-mnist-other"

    def load_while_another_run_starts(cfg):
        sibling.mkdir()
        (sibling / "config.json").write_text(json.dumps({"preset": "vae-mnist"}))
        raise UserError("no data here")

    monkeypatch.setattr(data, "load", load_while_another_run_starts)
    assert train.main(["--preset", "gan-mnist"]) == 2
    assert [p.name for p in (tmp_path / "experiments" / "runs").iterdir()] == ["vae-mnist-other"]
    assert (sibling / "config.json").exists()


def test_multiworker_without_out_is_refused_before_anything_is_made(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    cluster = {
        "cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]},
        "task": {"type": "worker", "index": 0},
    }
    monkeypatch.setenv("TF_CONFIG", json.dumps(cluster))
    assert train.main(["--preset", "gan-mnist", "--strategy", "multiworker"]) == 2
    assert "needs --out RUN_DIR" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
