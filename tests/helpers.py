"""What many tests share: tiny configs and their CLI flags, IDX files written on the fly, the
shared real-data folder. Imported as `helpers`; conftest.py keeps only fixtures."""

from __future__ import annotations

import gzip
import os
import struct
from dataclasses import replace
from pathlib import Path

import numpy as np

from gan_vae_tf import config as config_lib

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def shared_data() -> Path | None:
    """../shared/data beside the checkout (or $GAN_VAE_TF_DATA_DIR), when it exists."""
    env = os.environ.get("GAN_VAE_TF_DATA_DIR")
    for candidate in ([Path(env)] if env else []) + [SHARED_DATA]:
        if candidate.is_dir():
            return candidate
    return None


def write_idx(path: Path, array: np.ndarray, type_code: int = 0x08) -> Path:
    header = struct.pack(">HBB", 0, type_code, array.ndim) + struct.pack(
        f">{array.ndim}I", *array.shape
    )
    payload = header + array.astype(np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as f:
        f.write(payload)
    return path


def write_mnist(folder: Path, n_train: int = 96, n_test: int = 32, seed: int = 0) -> Path:
    """Four IDX .gz files of random 28x28 digits-like images, in the MNIST file names."""
    rng = np.random.default_rng(seed)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = (rng.random((n, 28, 28)) > 0.7).astype(np.uint8) * 255
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", images)
        labels = rng.integers(0, 10, n).astype(np.uint8)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", labels)
    return folder


# The default GAN presets size an epoch in steps; tiny runs keep one pass over their few images.
TINY_GAN = [
    "gan.gen_base_width=16",
    "gan.gen_widths=8,8",
    "gan.disc_widths=8,16",
    "train.steps_per_epoch=none",
]
TINY_VAE = [
    "vae.encoder_widths=8,16",
    "vae.decoder_base_width=8",
    "vae.decoder_widths=16,8",
    "train.steps_per_epoch=none",
]
TINY_GAN64 = [
    "gan.gen_base_width=16",
    "gan.gen_widths=16,8,8",
    "gan.disc_widths=8,8,16,16",
    "train.steps_per_epoch=none",
]
TINY_VAE64 = [
    "vae.encoder_widths=8,8,8,16,16",
    "vae.decoder_base_width=16",
    "vae.decoder_widths=16,8,8,8,8",
    "vae.latent_dim=8",
    "train.steps_per_epoch=none",
]
TINY = {
    "gan-mnist": TINY_GAN,
    "vae-mnist": TINY_VAE,
    "gan-anime": TINY_GAN64,
    "vae-anime": TINY_VAE64,
    "cgan-mnist": TINY_GAN,
    "cvae-mnist": TINY_VAE,
}


def pipeline(images: np.ndarray, cfg: config_lib.Config, **kwargs):
    """`data.pipeline` of `images` in the pixel range of the config's kind of model."""
    from gan_vae_tf import data, kinds

    return data.pipeline(images, cfg, kinds.of(cfg).pixels(cfg), **kwargs)


def synthetic_batches(cfg: config_lib.Config, n: int = 32):
    """Training batches of `n + n // 4` synthetic images (the last fifth held out) at the
    config's image size and batch size, with their labels for a conditional model."""
    from gan_vae_tf import data, kinds

    ds = data.synthetic(n + n // 4, cfg.data.image_size, cfg.data.channels)
    labels = ds.train_labels if kinds.of(cfg).classes(cfg) else None
    return pipeline(ds.train, cfg, training=True, labels=labels)


def tiny_config(preset: str, **train) -> config_lib.Config:
    """The preset at tiny widths, batch 8, one epoch of 4 steps: a known run length, so a
    preset's learning-rate decay can be sized when the model is built outside `train.py`."""
    cfg = config_lib.override(config_lib.preset(preset), TINY[preset.removesuffix("-report")])
    defaults = {"batch_size": 8, "epochs": 1, "steps_per_epoch": 4}
    return replace(cfg, train=replace(cfg.train, **{**defaults, **train}))


def train_args(
    preset: str,
    data_dir,
    run,
    *extra: str,
    epochs: int = 2,
    batch_size: int = 16,
    progress: str | None = "none",
) -> list[str]:
    """`python -m gan_vae_tf.train` flags for a tiny-network run of `preset`. `data_dir=None`
    lets the data be found as a user's would be; `progress=None` leaves the default."""
    args = [
        "--preset",
        preset,
        "--epochs",
        str(epochs),
        "--batch-size",
        str(batch_size),
        "--out",
        str(run),
    ]
    if data_dir is not None:
        args += ["--data-dir", str(data_dir)]
    if progress is not None:
        args += ["--progress", progress]
    for item in TINY[preset.removesuffix("-report")]:
        args += ["--set", item]
    return args + list(extra)  # last, so the test's own flags win


ROOT = Path(__file__).resolve().parents[1]


def train_process(args, *, wait: bool = True, cwd: Path = ROOT, env: dict | None = None, **kwargs):
    """`python -m gan_vae_tf.train ARGS` as a child process with TensorFlow's C++ logs at
    errors only: its CompletedProcess (text output captured) when `wait`, else the running
    Popen with piped output. The child gets SIGINT's default action back, since a suite
    started in the background (`make test &`) passes SIGINT on as ignored."""
    import signal
    import subprocess
    import sys

    command = [sys.executable, "-m", "gan_vae_tf.train", *map(str, args)]
    options = dict(
        cwd=cwd,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})},
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    options.update(kwargs)
    if wait:
        return subprocess.run(command, capture_output=True, **{"timeout": 600, **options})
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **options)


def write_blobs(folder: Path, n: int) -> Path:
    """An MNIST-layout folder of `n` learnable images (discs): losses move a lot on them, so a
    match between two ways of training means something."""
    from gan_vae_tf import data

    ds = data.synthetic(n)
    for prefix, images in (("train", ds.train), ("t10k", ds.test)):
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", images[..., 0])
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", np.zeros(len(images), np.uint8))
    return folder
