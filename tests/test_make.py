"""Make says what it will run: misspelt variables are named with the right one, and a training
run's first line is its effective settings."""

from __future__ import annotations

import logging
import shutil
import subprocess
from pathlib import Path

import pytest

from gan_vae_tf import train
from helpers import train_args

ROOT = Path(__file__).resolve().parents[1]


def make_n(*args: str) -> subprocess.CompletedProcess:
    """`make -n`: parses the Makefile and prints the commands without running any of them."""
    if shutil.which("make") is None:
        pytest.skip("GNU make is not installed")
    return subprocess.run(
        ["make", "-n", *args], cwd=ROOT, capture_output=True, text=True, timeout=60
    )


def test_a_misspelt_make_variable_gets_a_warning_naming_the_right_one():
    out = make_n("train-gan-mnist", "EPOCH=1", "DATADIR=/data", "EPOCS=2")
    assert out.returncode == 0
    warnings = [line for line in out.stderr.splitlines() if line.startswith("warning:")]
    assert sorted(warnings) == sorted(
        [
            "warning: this Makefile has no variable EPOCH, so EPOCH=1 is ignored; did you mean EPOCHS=1?",
            "warning: this Makefile has no variable DATADIR, so DATADIR=/data is ignored; did you mean DATA_DIR=/data?",
            "warning: this Makefile has no variable EPOCS, so EPOCS=2 is ignored; did you mean EPOCHS=2?",
        ]
    )
    assert "--epochs" not in out.stdout  # the misspelt value really is ignored: hence the warning


def test_a_variable_unlike_any_known_one_lists_the_known_ones():
    out = make_n("evaluate", "COLOUR=blue")
    assert (
        "warning: this Makefile has no variable COLOUR, so COLOUR=blue is ignored "
        "(it reads PYTHON, VENV, DATA_DIR, EPOCHS, RUN, ARGS)"
    ) in out.stderr


def test_the_makefile_variables_give_no_warning():
    out = make_n("train-gan-mnist", "EPOCHS=1", "RUN=/tmp/r", "DATA_DIR=/data", "ARGS=--limit 64")
    assert "warning" not in out.stderr
    assert "--epochs 1 --data-dir /data --out /tmp/r --limit 64" in out.stdout


def test_a_training_run_says_its_effective_settings_first(tmp_path, mnist_dir, caplog):
    caplog.set_level(logging.INFO, logger="gan_vae_tf")
    run = tmp_path / "run"
    assert train.main(train_args("gan-mnist", mnist_dir, run, epochs=1)) == 0
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("gan_vae_tf")]
    assert lines[0] == (
        f"training gan-mnist: 1 epoch, batch 16, precision auto, seed 0; "
        f"data: mnist from {mnist_dir}; run directory: {run}"
    )
    assert any(
        line.startswith("data: idx:")
        and line.endswith("96 train / 32 test images, 6 steps per epoch")
        for line in lines
    )
