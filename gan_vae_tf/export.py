"""Export a run's sampler as a TensorFlow SavedModel: `python -m gan_vae_tf.export RUN_DIR OUT_DIR`.

The SavedModel serves without this package (nor Keras): `tf.saved_model.load(OUT_DIR)` gives

- `serving_default(codes)`: float32 codes (n, code size) -> {"images": float32 in [0, 1],
  "images_uint8": uint8}, (n, H, W, C): a DCGAN's generator (its EMA when kept, unless
  `--raw-generator`), a VAE's decoder mean;
- `sample(count, seed)`: int32 scalars -> the same outputs for `count` codes made from noise
  drawn by `tf.random.stateless_normal` from `seed` (a VAE's draws of its prior, learned or
  not), the images `gan_vae_tf.load(RUN_DIR).sample(count, seed)` returns.

A class-conditional run's signatures take the labels too: `serving_default(codes, labels)`
(int32, one per code) and `sample(count, seed, label)` (every image of class `label`).

It is written through Keras 3's export API (`keras.export.ExportArchive`). With `--onnx
FILE.onnx`, `serving_default` is also converted to ONNX by tf2onnx (`pip install
"gan_vae_tf[onnx]"`): codes in, `images` and `images_uint8` out, for onnxruntime and others.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from gan_vae_tf import console, errors, rundir
from gan_vae_tf.config import Config
from gan_vae_tf.errors import UserError


def export(run_dir, out_dir, raw_generator: bool = False) -> Path:
    """Write the SavedModel of `run_dir`'s sampler into `out_dir` (which must not exist yet),
    whole or not at all."""
    import keras
    import tensorflow as tf

    from gan_vae_tf import trained

    out = Path(out_dir)
    if out.exists():
        raise UserError(f"{out} exists: export writes a new folder")
    run = trained.load(run_dir)
    generator = "raw" if raw_generator else None
    size = run.code_size

    def images(codes, labels=None):
        floats = run.kind.images_from_codes(run.model, codes, generator, labels)
        as_bytes = tf.cast(tf.round(tf.clip_by_value(floats, 0.0, 1.0) * 255.0), tf.uint8)
        return {"images": floats, "images_uint8": as_bytes}

    noise_size = run.kind.noise_size(run.config)

    def codes(count, seed):
        noise = tf.random.stateless_normal((count, noise_size), seed=tf.stack([seed, 0]))
        return run.kind.codes_from_noise(run.model, noise)

    def sample(count, seed):
        return images(codes(count, seed))

    def sample_class(count, seed, label):
        return images(codes(count, seed), tf.fill((count,), label))

    scalar = tf.TensorSpec((), tf.int32)
    codes_spec = tf.TensorSpec((None, size), tf.float32)

    archive = keras.export.ExportArchive()
    archive.track(run.kind.image_network(run.model, generator))  # only what draws the images
    for layer in run.kind.code_layers(run.model):  # e.g. a VAE's learned prior
        archive.track(layer)
    if run.classes:
        labels_spec = tf.TensorSpec((None,), tf.int32)
        archive.add_endpoint("serving_default", images, input_signature=[codes_spec, labels_spec])
        archive.add_endpoint("sample", sample_class, input_signature=[scalar, scalar, scalar])
    else:
        archive.add_endpoint("serving_default", images, input_signature=[codes_spec])
        archive.add_endpoint("sample", sample, input_signature=[scalar, scalar])
    tmp = rundir.temp_path(out)
    try:
        archive.write_out(str(tmp), verbose=False)
        tmp.rename(out)
    except OSError as e:
        raise UserError(f"cannot write {out}: {e.strerror or e}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _check_tf2onnx() -> None:
    if importlib.util.find_spec("tf2onnx") is None:
        raise UserError(
            'ONNX needs tf2onnx: pip install "gan_vae_tf[onnx]" (or tf2onnx onnxruntime)'
        )


def to_onnx(saved_model: str | os.PathLike, out: str | os.PathLike) -> Path:
    """The SavedModel's `serving_default` as an ONNX file, converted by tf2onnx in a process
    of its own (it sets TensorFlow up its own way), written whole or not at all."""
    _check_tf2onnx()
    out = Path(out)
    tmp = rundir.temp_path(out)
    command = [sys.executable, "-m", "tf2onnx.convert", "--saved-model", str(saved_model)]
    command += ["--signature_def", "serving_default", "--output", str(tmp)]
    try:
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0 or not tmp.is_file():
            last = (done.stderr.strip().splitlines() or ["no message"])[-1]
            raise UserError(f"tf2onnx could not convert {saved_model}: {last}")
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m gan_vae_tf.export", description=__doc__.split("\n")[0]
    )
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("out_dir", metavar="OUT_DIR", help="a new folder for the SavedModel")
    p.add_argument(
        "--raw-generator",
        action="store_true",
        help="DCGAN runs: export the raw generator, not its moving average (EMA)",
    )
    p.add_argument("--onnx", metavar="FILE.onnx", help="also write serving_default as ONNX")
    args = p.parse_args(argv)
    try:
        if Path(args.out_dir).exists():
            raise UserError(f"{args.out_dir} exists: export writes a new folder")
        if args.onnx and not args.onnx.endswith(".onnx"):
            raise UserError(f"--onnx {args.onnx}: name a .onnx file")
        if args.onnx:
            _check_tf2onnx()  # before the SavedModel, so a retry does not meet its folder
        console.setup()
        out = export(args.run_dir, args.out_dir, args.raw_generator)
        signatures = (
            "serving_default(codes, labels) and sample(count, seed, label)"
            if Config.from_json(rundir.RunDir(args.run_dir).config).classes
            else "serving_default(codes) and sample(count, seed)"
        )
        print(f"wrote {out}: signatures {signatures}")
        if args.onnx:
            print(f"wrote {to_onnx(out, args.onnx)}: inputs codes, outputs images, images_uint8")
    except errors.REPORTED as e:
        return errors.report(e)
    return 0


if __name__ == "__main__":
    sys.exit(main())
