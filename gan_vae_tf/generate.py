"""Write images from a trained run: `python -m gan_vae_tf.generate [RUN_DIR] [--num N] ...`.

Samples (a DCGAN's generator output, a VAE's decoder mean for prior codes), interpolations
between random codes (`--interpolate K`), or a VAE's reconstructions of your own images
(`--reconstruct DIR`), as one PNG grid, a folder of PNGs, a uint8 `.npy` or, for
interpolations, an animated GIF (chosen by `--out`'s suffix; no suffix: a folder). The same
seed gives byte-identical files. Nothing is written until every image is made, and then in
one rename, so a failed command leaves no partial file.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from gan_vae_tf import console, errors, plots, rundir
from gan_vae_tf.config import Config
from gan_vae_tf.errors import UserError

FORMATS = (".png", ".npy", ".gif")
PROGRESS_EVERY = 5.0  # seconds between progress lines on a long job


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m gan_vae_tf.generate", description=__doc__.splitlines()[0]
    )
    p.add_argument("run_dir", nargs="?", help="a finished run (default: the newest one)")
    p.add_argument(
        "--num", type=int, help="images to draw (default 64), or rows of an interpolation (8)"
    )
    p.add_argument("--seed", type=int, default=0, help="the same seed draws the same images")
    p.add_argument(
        "--out",
        help="a .png grid, a .npy of uint8 images, a .gif (interpolations), or a folder "
        "(no suffix) of one PNG per image; default RUN_DIR/generated/...",
    )
    p.add_argument(
        "--raw-generator",
        action="store_true",
        help="DCGAN runs: draw with the raw generator, not its moving average (EMA)",
    )
    p.add_argument(
        "--interpolate",
        type=int,
        metavar="K",
        help="K images along the line between two random codes, per row",
    )
    p.add_argument(
        "--label",
        type=_labels,
        metavar="L",
        help="class-conditional runs: draw class L, or each of a range (0-9) or list (1,7) in "
        "turn (default: every class in turn); with --reconstruct, the class of your images",
    )
    p.add_argument(
        "--reconstruct",
        metavar="DIR",
        help="VAE runs: your images in DIR, prepared as the training data was, beside their "
        "reconstructions",
    )
    return p.parse_args(argv)


def _labels(text: str) -> list[int]:
    """ "7" -> [7], "0-9" -> [0, ..., 9], "1,7" -> [1, 7]."""
    try:
        if "-" in text:
            first, last = (int(part) for part in text.split("-", 1))
            return list(range(first, last + 1))
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a class, a range A-B or a list, got {text!r}"
        ) from None


def _run_dir(given: str | None) -> Path:
    if given:
        return Path(given)
    newest = rundir.newest()
    if newest is None:
        raise UserError(
            f"no run directory given and no finished run in {rundir.DEFAULT_ROOT} "
            "(train one first, e.g. make train-gan-mnist)"
        )
    return newest


def _config(run: Path) -> Config:
    """The run's config, checked before TensorFlow is imported, so bad input fails at once."""
    rundir.check_finished(run)
    try:
        return Config.from_json(rundir.RunDir(run).config)
    except (ValueError, TypeError, KeyError) as e:
        raise UserError(f"{rundir.RunDir(run).config} is not a valid run config: {e}") from None


def _default_out(run: Path, args: argparse.Namespace) -> Path:
    """RUN_DIR/generated/<what was asked>.png: a name per request, so requests do not
    overwrite each other."""
    raw = ("-raw" if args.raw_generator else "") + (
        f"-label{args.label[0]}-{args.label[-1]}" if args.label else ""
    )
    if args.reconstruct:
        name = f"reconstructions-{Path(args.reconstruct).resolve().name}.png"
    elif args.interpolate:
        name = f"interpolation-{args.num}x{args.interpolate}-seed{args.seed}{raw}.png"
    else:
        name = f"samples-{args.num}-seed{args.seed}{raw}.png"
    return run / "generated" / name


def _check_out(out: Path, args: argparse.Namespace) -> None:
    if out.suffix and out.suffix not in FORMATS:
        raise UserError(f"--out {out}: use a .png, .npy or .gif file, or a folder (no suffix)")
    if out.suffix == ".gif" and (not args.interpolate or args.reconstruct):
        raise UserError("--out *.gif animates an interpolation: use it with --interpolate K")
    if not out.suffix and out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"--out {out} exists and is not an empty folder: choose another")
    if out.suffix and out.is_dir():
        raise UserError(f"--out {out} is a folder: name a file, or a folder without a suffix")
    parent = out.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise UserError(f"--out {out}: {parent} is not a writable folder")


def _memory_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _check_memory(images: int, shape: tuple[int, int, int]) -> None:
    """The images (and a grid of them) must fit in half the memory this machine has free."""
    need = 2 * images * shape[0] * shape[1] * shape[2]
    free = _memory_available()
    if free is not None and need > free // 2:
        raise UserError(
            f"{images:,} images of {'x'.join(map(str, shape))} need about {need / 2**30:.1f} GiB; "
            f"{free / 2**30:.1f} GiB of memory is free: ask for fewer with --num"
        )


def _progress_lines(what: str) -> Callable[[int, int], None]:
    start = last = time.perf_counter()

    def report(done: int, total: int) -> None:
        nonlocal last
        now = time.perf_counter()
        if now - last >= PROGRESS_EVERY and done < total:
            last = now
            print(f"{what}: {done:,}/{total:,} images, {done / (now - start):.0f} images/s")

    return report


def _write(out: Path, images, grid_columns: int | None = None, frames=None) -> Path:
    """Write uint8 images (N, H, W, C) to `out` in the format its suffix names, atomically."""
    try:
        return _write_format(out, images, grid_columns, frames)
    except OSError as e:
        raise UserError(f"cannot write {out}: {e.strerror or e}") from None


def _write_format(out: Path, images, grid_columns: int | None, frames) -> Path:
    if out.suffix == ".npy":
        with rundir.atomic_path(out) as tmp:
            np.save(tmp, images)
    elif out.suffix == ".png":
        plots.save_png(plots.grid(images, grid_columns), out)
    elif out.suffix == ".gif":
        plots.gif([plots.grid(frame) for frame in frames], out)
    else:
        tmp = rundir.temp_path(out)
        try:
            tmp.mkdir(parents=True)
            width = max(4, len(str(len(images) - 1)))
            for i, image in enumerate(images):
                Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(
                    tmp / f"{i:0{width}d}.png", format="PNG"
                )
            if out.is_dir():
                out.rmdir()  # empty, as _check_out made sure
            os.replace(tmp, out)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def generate(args: argparse.Namespace) -> str:
    """Make the images `args` ask for and write them; returns what to print."""
    run = _run_dir(args.run_dir)
    cfg = _config(run)
    if args.num is not None and args.num <= 0:
        raise UserError(f"--num must be positive, got {args.num}")
    if args.interpolate is not None and args.interpolate < 2:
        raise UserError(f"--interpolate needs at least 2 steps (both ends), got {args.interpolate}")
    args.num = args.num or (8 if args.interpolate else 64)
    out = Path(args.out) if args.out else _default_out(run, args)
    _check_out(out, args)
    if not args.reconstruct:
        _check_memory(args.num * (args.interpolate or 1), cfg.image_shape)
    console.setup()
    from gan_vae_tf import trained  # after console.setup(): it imports TensorFlow

    model = trained.load(run)
    if args.reconstruct and not model.kind.has_encoder:
        raise UserError(f"--reconstruct needs a VAE; {run} holds a {model.kind.title}")
    generator = "raw" if args.raw_generator else None
    start = time.perf_counter()
    progress = _progress_lines("generating")
    if args.reconstruct:
        images = _own_images(Path(args.reconstruct), cfg)
        seen, recon = model.reconstruct(images, _progress_lines("reconstructing"), args.label)
        made = len(images)
        if out.suffix == ".npy":  # (2, N, H, W, C): the images as the model saw them, rebuilt
            _write(out, np.stack([seen, recon]))
        elif out.suffix == ".png":  # each image followed by its reconstruction, 8 pairs a row
            pairs = np.stack([seen, recon], axis=1).reshape(-1, *seen.shape[1:])
            _write(out, pairs, min(16, len(pairs)))
        else:  # one PNG per image: the image beside its reconstruction
            sides = [plots.side_by_side(a, b, gap=2) for a, b in zip(seen, recon, strict=True)]
            _write(out, sides)
    elif args.interpolate:
        steps = model.interpolate(
            args.num, args.interpolate, args.seed, generator, progress, args.label
        )
        made = steps.shape[0] * steps.shape[1]
        flat = steps.reshape(made, *steps.shape[2:])
        _write(out, flat, grid_columns=args.interpolate, frames=steps.transpose(1, 0, 2, 3, 4))
    else:
        images = model.sample(args.num, args.seed, generator, progress, args.label)
        made = len(images)
        _write(out, images)
    seconds = time.perf_counter() - start
    return (
        f"wrote {out}: {made:,} images in {seconds:.1f} s ({made / max(seconds, 1e-9):.0f} "
        f"images/s) from {run}"
    )


def _own_images(folder: Path, cfg: Config):
    """The images in `folder`, prepared as the run's training images were (centre crop,
    resize), refused when their colour channels differ from the run's."""
    from gan_vae_tf import imagefolder  # imports TensorFlow: after console.setup()

    if not folder.is_dir():
        raise UserError(f"--reconstruct {folder}: no such folder")
    files = imagefolder.list_image_files(folder)
    if not files:
        raise UserError(f"--reconstruct {folder}: no images (JPEG, PNG, BMP, GIF or WebP) in it")
    channels = cfg.data.channels
    for path in files:
        try:
            with Image.open(path) as im:
                theirs = 1 if im.mode in ("1", "L", "LA", "I", "I;16", "F") else 3
        except OSError:
            continue  # not an image after all: the loader below skips it with a warning
        if theirs != channels:
            raise UserError(
                f"--reconstruct {folder}: {Path(path).name} has {theirs} colour channel"
                f"{'s' if theirs > 1 else ''}; this run's images have {channels}"
            )
    with tempfile.TemporaryDirectory(prefix="gan_vae_tf-reconstruct-") as cache:
        found = imagefolder.load_image_folder(
            folder, cfg.data.image_size, channels, cache_dir=cache
        )
        images = found.images.copy()  # the memory map goes with the temporary cache
    if not len(images):
        raise UserError(f"--reconstruct {folder}: none of its images could be decoded")
    return images


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        print(generate(args))
    except errors.REPORTED as e:
        return errors.report(e)
    return 0


if __name__ == "__main__":
    sys.exit(main())
