"""Export a run's sampler as a TensorFlow SavedModel: `python -m gan_vae_tf.export RUN_DIR OUT_DIR`.

The SavedModel serves without this package (nor Keras): `tf.saved_model.load(OUT_DIR)` gives

- `serving_default(codes)`: float32 codes (n, code size) -> {"images": float32 in [0, 1],
  "images_uint8": uint8}, (n, H, W, C): a DCGAN's generator (its EMA when kept, unless
  `--raw-generator`), a VAE's decoder mean;
- `sample(count, seed)`: int32 scalars -> the same outputs for `count` codes drawn by
  `tf.random.stateless_normal` from `seed`, the images `gan_vae_tf.load(RUN_DIR).sample(count,
  seed)` returns.

It is written through Keras 3's export API (`keras.export.ExportArchive`).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from gan_vae_tf import console, errors, rundir
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

    def images(codes):
        floats = run.kind.images_from_codes(run.model, codes, generator)
        as_bytes = tf.cast(tf.round(tf.clip_by_value(floats, 0.0, 1.0) * 255.0), tf.uint8)
        return {"images": floats, "images_uint8": as_bytes}

    def sample(count, seed):
        return images(tf.random.stateless_normal((count, size), seed=tf.stack([seed, 0])))

    archive = keras.export.ExportArchive()
    for net in run.model.networks().values():
        archive.track(net)
    archive.add_endpoint(
        "serving_default", images, input_signature=[tf.TensorSpec((None, size), tf.float32)]
    )
    archive.add_endpoint(
        "sample",
        sample,
        input_signature=[tf.TensorSpec((), tf.int32), tf.TensorSpec((), tf.int32)],
    )
    tmp = rundir.temp_path(out)
    try:
        archive.write_out(str(tmp), verbose=False)
        tmp.rename(out)
    except OSError as e:
        raise UserError(f"cannot write {out}: {e.strerror or e}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
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
    args = p.parse_args(argv)
    try:
        if Path(args.out_dir).exists():
            raise UserError(f"{args.out_dir} exists: export writes a new folder")
        console.setup()
        out = export(args.run_dir, args.out_dir, args.raw_generator)
    except errors.REPORTED as e:
        return errors.report(e)
    print(f"wrote {out}: signatures serving_default(codes) and sample(count, seed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
