"""The GAN-vs-VAE comparison: `python -m gan_vae_tf.report RUN_DIR [RUN_DIR ...]`.

Reads evaluated run directories (run `python -m gan_vae_tf.evaluate` first) and writes
`experiments/report/`: the reports' comparison table per dataset as Markdown, figures for each
run, visualkeras diagrams of every network, and one self-contained `report.html`. Modules that
import TensorFlow are imported inside the functions that use them, after `main` has called
`console.setup()`, which hides TensorFlow's start-up chatter.
"""

from __future__ import annotations

import argparse
import base64
import html
import json
import os
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from gan_vae_tf import console, errors, rundir
from gan_vae_tf.config import CONDITIONAL_PRESETS, DEFAULT_PRESETS, Config
from gan_vae_tf.errors import UserError
from gan_vae_tf.quality import fidelity_text, kid_text


@dataclass
class Run:
    path: Path
    config: dict
    metrics: dict
    summary: dict

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def dataset(self) -> str:
        return self.config["data"]["dataset"]


def read_run(path: str | os.PathLike) -> Run:
    run = rundir.RunDir(path)
    files = (run.config, run.metrics, run.summary)
    missing = [f for f in files if not f.is_file()]
    if missing:
        hint = " (run python -m gan_vae_tf.evaluate on it first)" if run.metrics in missing else ""
        names = ", ".join(f.name for f in missing)
        raise UserError(f"{run.path} is not a finished, evaluated run: no {names}{hint}")
    return Run(run.path, *(json.loads(f.read_text()) for f in files))


def _fmt(value, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _quality_cell(run: Run) -> str:
    q = run.metrics.get("quality")
    if not q:
        return "—"
    m, f = q["model"], q["real_floor"]
    if "fid" in m:
        return (
            f"FID {m['fid']:.2f} (floor {f['fid']:.2f}); KID {kid_text(m)} "
            f"(floor {f['kid']:.4f}); P/R {m['precision']:.2f}/{m['recall']:.2f} "
            f"(floor {f['precision']:.2f}/{f['recall']:.2f}); CS {m['classifier_score']:.2f} "
            f"(floor {f['classifier_score']:.2f})"
        )
    return f"SWD×1e3 {m['swd']:.2f} (floor {f['swd']:.2f})"


def _fidelity_cell(run: Run) -> str:
    """How often a class-conditional model draws the class asked for (— for the others)."""
    f = (run.metrics.get("quality") or {}).get("class_fidelity")
    if not f:
        return "—"
    return f"{fidelity_text(f['model'])} (floor {f['real_floor']['accuracy']:.4f})"


def comparison_table(runs: list[Run]) -> str:
    """The reports' table, measured: one row per run of one dataset; a column for the class
    asked for when a run of the table is class-conditional."""
    from gan_vae_tf import kinds

    conditional = any(_fidelity_cell(r) != "—" for r in runs)
    header = (
        "| run | model | D(G(z)) on generated | D(x) on real | epochs | training time | s/epoch "
        "| image quality (model vs real-data floor) "
        + ("| class asked for (classifier) " if conditional else "")
        + "| test ELBO (nats) | IWAE (nats) | latent space | trained on |"
    )
    lines = [header, "|" + "---|" * (13 if conditional else 12)]
    for r in runs:
        m, s = r.metrics, r.summary
        iwae = m.get("iwae", {}).get("iwae_nats")
        cfg = Config.from_dict(r.config)
        kind = kinds.of(cfg)
        title = kind.title + (", EMA generator" if m.get("generator") == "ema" else "")
        lines.append(
            f"| {r.name} | {title} "
            f"| {_fmt(m.get('d_fake'))} | {_fmt(m.get('d_real'))} | {s['epochs']} "
            f"| {s['seconds'] / 60:.1f} min | {s['seconds_per_epoch']:.1f} | {_quality_cell(r)} "
            + (f"| {_fidelity_cell(r)} " if conditional else "")
            + f"| {_fmt(m.get('elbo_nats'), 2)} | {_fmt(iwae, 2)} | {kind.latent_space(cfg)} "
            f"| {r.config.get('run', {}).get('cpu', 'not recorded')} |"
        )
    return "\n".join(lines)


def figures(run: Run, out: Path) -> list[Path]:
    """Copies and draws every figure of one run into `out`; returns them in display order."""
    import keras
    import numpy as np

    from gan_vae_tf import data, diagrams, kinds, plots

    out.mkdir(parents=True, exist_ok=True)
    made: list[Path] = []
    files = rundir.RunDir(run.path)
    samples = files.sample_pngs()
    if samples:
        made.append(Path(shutil.copyfile(samples[-1], out / "samples_last_epoch.png")))
        made.append(plots.animated_gif(samples, out / "samples.gif"))
    made.append(Path(shutil.copyfile(files.loss_curves, out / files.loss_curves.name)))
    history = files.read_history()
    if "d_real" in history:
        made.append(
            plots.loss_curves(
                {
                    "epoch": history["epoch"],
                    "d_real": history["d_real"],
                    "d_fake": history["d_fake"],
                },
                out / "d_real_fake.png",
                "mean D(x) and D(G(z)) per epoch",
            )
        )
    fidelity = (run.metrics.get("quality") or {}).get("class_fidelity")
    if fidelity:
        made.append(
            plots.confusion_matrix(
                fidelity["model"]["confusion"],
                out / "class_confusion.png",
                "samples: class asked for against the class the digit classifier saw",
            )
        )
    cfg = Config.from_dict(run.config)
    kind = kinds.of(cfg)
    networks = kind.build(cfg).networks()
    made += [Path(p) for p in diagrams.network_diagrams(networks, out, f"{cfg.preset} ").values()]
    if kind.has_encoder:  # latent-space figures need q(z|x)
        _, model = kinds.load_run(run.path)
        dataset = data.load(cfg.data)
        pixels = kind.pixels(cfg)

        idx = data.sample_indices(len(dataset.test), 2000)
        test = dataset.test if idx is None else dataset.test[idx]
        labels = dataset.test_labels
        if labels is not None and idx is not None:
            labels = labels[idx]
        # A CVAE encodes each image with its own label and decodes a code as one class: its
        # latent figures show the style space of class 0 (every class has the same prior).
        given = kind.labels(cfg, labels, "test")
        drawn_as = "" if given is None else "_class0"

        def decode(z):
            z = np.asarray(z, "float32")
            as_class = None if given is None else np.zeros(len(z), np.int32)
            return keras.ops.convert_to_numpy(keras.ops.sigmoid(model.decode(z, as_class)))

        def part(array, i):
            return None if array is None else array[i : i + 500]

        means = np.concatenate(
            [
                keras.ops.convert_to_numpy(
                    model.encode(pixels.scale(test[i : i + 500]), part(given, i))[0]
                )
                for i in range(0, len(test), 500)
            ]
        )
        if cfg.vae.latent_dim == 2:
            made.append(plots.latent_manifold(decode, out / f"latent_manifold{drawn_as}.png", n=20))
        else:  # the plane of the two main directions of the test images' codes
            made.append(
                plots.latent_walk(decode, means, out / f"latent_walk_pc1_pc2{drawn_as}.png")
            )
        made.append(plots.latent_scatter(means, labels, out / "latent_scatter.png"))
        eight = data.sample_indices(len(test), 8, seed=1)  # drawn, not the array's first eight
        eight = np.arange(min(8, len(test))) if eight is None else eight
        made.append(
            plots.interpolation_strip(
                decode,
                means[eight[0::2]],
                means[eight[1::2]],
                out / f"interpolations{drawn_as}.png",
            )
        )
        x = pixels.scale(test[eight]).numpy()
        recon = keras.ops.convert_to_numpy(
            model.reconstruct(x, None if given is None else given[eight])
        )
        made.append(
            plots.save_png(plots.reconstruction_grid(x, recon), out / "reconstructions.png", 2)
        )
    return made


def _img(path: Path) -> str:
    mime = "image/gif" if path.suffix == ".gif" else "image/png"
    data = base64.b64encode(path.read_bytes()).decode()
    return (
        f'<figure><img src="data:{mime};base64,{data}" alt="{html.escape(path.stem)}">'
        f"<figcaption>{html.escape(path.stem.replace('_', ' '))}</figcaption></figure>"
    )


def _md_to_html_table(md: str) -> str:
    rows = [r.strip().strip("|").split("|") for r in md.splitlines() if not r.startswith("|---")]
    head = "".join(f"<th>{html.escape(c.strip())}</th>" for c in rows[0])
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c.strip())}</td>" for c in r) + "</tr>"
        for r in rows[1:]
    )
    return f"<table><tr>{head}</tr>{body}</table>"


# The tables of a dataset, in order: a run goes to the first whose presets name it; None
# takes the rest.
TABLES = (
    ("The default recipes: GAN and VAE on one scale", DEFAULT_PRESETS),
    ("The class-conditional recipes: asked for a digit", CONDITIONAL_PRESETS),
    ("The reports' settings and other runs (reproduction)", None),
)


def _table_of(preset: str) -> str:
    """The heading of the table a run of `preset` goes to."""
    return next(heading for heading, names in TABLES if names is None or preset in names)


def write(run_dirs: Sequence[str | os.PathLike], out: str | os.PathLike) -> Path:
    """Tables, figures and report.html for the runs into `out`; returns the HTML page."""
    runs = [read_run(d) for d in run_dirs]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    by_dataset: dict[str, list[Run]] = {}
    for r in runs:
        by_dataset.setdefault(r.dataset, []).append(r)
    md = ["# GAN vs VAE: measured comparison", ""]
    body = ["<h1>GAN vs VAE: measured comparison</h1>"]
    for dataset, group in by_dataset.items():
        md += [f"## {dataset}", ""]
        body.append(f"<h2>{html.escape(dataset)}</h2>")
        for heading, _ in TABLES:
            runs_of_kind = [r for r in group if _table_of(r.config["preset"]) == heading]
            if runs_of_kind:
                table = comparison_table(runs_of_kind)
                md += [f"### {heading}", "", table, ""]
                body += [f"<h3>{html.escape(heading)}</h3>", _md_to_html_table(table)]
    rundir.write_text(out / "tables.md", "\n".join(md) + "\n")
    for r in runs:
        figs = figures(r, out / r.name)
        body.append(
            f"<h2>{html.escape(r.name)}</h2><div class=figs>"
            + "".join(_img(p) for p in figs)
            + "</div>"
        )
    style = (
        "body{font-family:sans-serif;max-width:1400px;margin:auto;padding:1em}"
        "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:4px}"
        ".figs{display:flex;flex-wrap:wrap;gap:12px}figure{margin:0}img{max-width:640px}"
        "figcaption{font-size:12px;color:#555}"
    )
    page = (
        f"<!doctype html><meta charset=utf-8><title>gan_vae_tf report</title><style>{style}</style>"
        + "\n".join(body)
    )
    return rundir.write_text(out / "report.html", page)


def main(argv: Sequence[str] | None = None) -> int:
    console.setup()
    p = argparse.ArgumentParser(
        prog="python -m gan_vae_tf.report", description=__doc__.splitlines()[0]
    )
    p.add_argument("run_dirs", nargs="*", metavar="RUN_DIR")
    p.add_argument("--latest", action="store_true", help="the newest finished run of each preset")
    p.add_argument("--out", default=str(Path("experiments") / "report"))
    args = p.parse_args(argv)
    run_dirs = list(args.run_dirs) + ([str(d) for d in rundir.latest()] if args.latest else [])
    try:
        if not run_dirs:
            raise UserError("no run directories given (or pass --latest)")
        path = write(run_dirs, args.out)
    except errors.REPORTED as e:
        return errors.report(e)
    print(f"wrote {Path(args.out) / 'tables.md'} and {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
