"""Time to quality: recipes trained side by side for the same wall-clock budget, one at a time.

`make bench-quality` trains, for each suite, the reports' settings and the default recipe
exactly as `train.py` builds them (same model, pipeline and precision), each for `--minutes` of
training (the first, the baseline, for `--baseline-minutes` when given, so that a slow recipe's
time to a threshold is measured rather than bounded), and scores the samples every `--every`
seconds with the project's own metrics:
  - digits (suites mnist, vae-mnist): classifier score, FID, precision/recall in the digit
    classifier's features, against held-out test digits, beside the real-data floor (two
    disjoint test sets);
  - faces (anime, vae-anime): SWD x 1e3 on Laplacian-pyramid patches against held-out faces,
    beside its floor;
  - and for the VAE suites the test ELBO, on a fixed seeded subset of the held-out images;
  - for a class-conditional arm (the suites cgan-*, cvae-*), how often the digit classifier
    sees the class each sample was asked for (the classes in turn), overall and for the
    weakest class.
Scoring time is charged to neither side; start-up (building, tracing) is. The headline is the
ratio of the two recipes' minutes to reach each threshold, measured in the same run; a VAE's
first threshold is the report settings' own test ELBO at the end of the budget. An arm is
`preset` or `preset:section.key=value,...` (e.g. `gan-mnist:gan.ema_decay=0`), so the same
script also runs ablations. Writes experiments/bench/quality-<suite>.{json,md,png} and the
sample grid of every arm at every probe.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from benchmarks.common import TimeBudget, arm_config, build_arm, cpu_name, parse_arm
from gan_vae_tf import console, errors

ROOT = Path(__file__).resolve().parents[1]

DIGITS = {"scoring": "digits", "minutes": 10.0, "num": 2000}
FACES = {"scoring": "faces", "minutes": 30.0, "num": 1000}
SUITES = {
    "mnist": {**DIGITS, "arms": ("gan-mnist-report", "gan-mnist")},
    "anime": {**FACES, "arms": ("gan-anime-report", "gan-anime")},
    "vae-mnist": {**DIGITS, "arms": ("vae-mnist-report", "vae-mnist"), "elbo": True},
    "vae-anime": {**FACES, "arms": ("vae-anime-report", "vae-anime"), "elbo": True},
    "cgan-mnist": {**DIGITS, "arms": ("gan-mnist", "cgan-mnist"), "conditional": True},
    # The CVAE's path from vae-mnist's recipe with a label (learned prior, latent 16) to its
    # default (N(0, I), latent 8).
    "cvae-mnist": {
        **DIGITS,
        "arms": (
            "cvae-mnist:vae.prior_components=200,vae.latent_dim=16",
            "cvae-mnist:vae.latent_dim=16",
            "cvae-mnist",
        ),
        "conditional": True,
        "elbo": True,
    },
    # How the image-reading network takes the label (config.LABEL_INPUTS), each default against
    # its alternative.
    "cgan-labels": {
        **DIGITS,
        "arms": ("cgan-mnist:gan.disc_label=planes", "cgan-mnist:gan.disc_label=projection"),
        "conditional": True,
    },
    "cvae-labels": {
        **DIGITS,
        "arms": ("cvae-mnist:vae.encoder_label=planes", "cvae-mnist:vae.encoder_label=features"),
        "conditional": True,
        "elbo": True,
    },
}
# The metrics each scoring records, and whether lower is better.
METRICS = {
    "digits": {"classifier_score": False, "fid": True, "precision": False, "recall": False},
    "faces": {"swd": True},
}
# Thresholds a "minutes to reach" column is computed for: (metric, comparison, value or a
# multiple of the real-data floor). BASELINE: the first arm's value after BASELINE_MINUTES of
# training (its last probe within them): "the report settings' 10-minute test ELBO".
BASELINE = "baseline"
BASELINE_MINUTES = 10.0
THRESHOLDS = {
    "mnist": [
        ("classifier_score", ">=", 8.0, None),
        ("classifier_score", ">=", 9.0, None),
        ("fid", "<=", None, 5.0),
    ],
    # 47.7 is half of the report DCGAN-64's SWD after 5 epochs (95.4, experiments/RESULTS.md).
    "anime": [("swd", "<=", 80.0, None), ("swd", "<=", 47.7, None), ("swd", "<=", None, 3.0)],
    "vae-mnist": [
        ("test_elbo", ">=", BASELINE, None),
        ("test_elbo", ">=", -78.0, None),
        ("classifier_score", ">=", 7.5, None),
        ("classifier_score", ">=", 8.5, None),
        ("fid", "<=", None, 10.0),
    ],
    "vae-anime": [("test_elbo", ">=", BASELINE, None), ("swd", "<=", 80.0, None)],
    # Issue targets of the conditional models: cgan-mnist's, then cvae-mnist's.
    "cgan-mnist": [
        ("classifier_score", ">=", 8.0, None),
        ("classifier_score", ">=", 8.5, None),
        ("fid", "<=", None, 5.0),
        ("accuracy", ">=", 0.97, None),
        ("lowest_class_accuracy", ">=", 0.90, None),
    ],
    "cvae-mnist": [
        ("test_elbo", ">=", BASELINE, None),
        ("accuracy", ">=", 0.95, None),
        ("classifier_score", ">=", 8.5, None),
        ("fid", "<=", None, 5.0),
    ],
}
# The label-input screens are judged as the models they screen.
THRESHOLDS |= {"cgan-labels": THRESHOLDS["cgan-mnist"], "cvae-labels": THRESHOLDS["cvae-mnist"]}
ELBO_IMAGES = 1000  # held-out images the test ELBO of a VAE suite is measured on


def reached(points: list[dict], key: str, op: str, value: float) -> float | None:
    """Training seconds of the first probe that meets `key op value`, None if none does (or
    the arm does not measure `key`, as an unconditional arm has no class accuracy)."""
    for p in points:
        if key not in p:
            continue
        if (p[key] >= value) if op == ">=" else (p[key] <= value):
            return p["train_seconds"]
    return None


def run_arm(arm: str, suite: str, dataset, scorer, args, grids: Path, minutes: float) -> dict:
    from gan_vae_tf import data, evaluation, kinds, plots

    spec = SUITES[suite]
    preset, sets = parse_arm(arm)
    cfg = arm_config(arm, args.seed)
    kind = kinds.of(cfg)
    # A CVAE's ELBO is conditioned on each image's own label.
    elbo_images, elbo_labels = (
        kind.held_out(cfg, dataset, ELBO_IMAGES) if spec.get("elbo") else (None, None)
    )
    model, policy, why = build_arm(cfg, args.precision)
    safe = arm.replace(":", "_").replace("=", "-").replace(",", "_").replace("/", "-")
    folder = grids / safe
    folder.mkdir(parents=True, exist_ok=True)
    four_by_four = replace(cfg, train=replace(cfg.train, sample_grid=4))
    inputs = kind.grid_inputs(four_by_four, dataset, np.random.default_rng(1234))
    classes = kind.classes(cfg)
    requested = evaluation.balanced_labels(args.num, classes) if classes else None

    def probe(m, spent: float, steps: int) -> dict:
        plots.save_png(
            kind.draw_grid(m, inputs),
            folder / f"minute_{spent / 60:05.2f}.png",
            2 if spec["scoring"] == "digits" else 1,
        )
        point = scorer(evaluation.samples(m, args.num, requested), requested)
        if elbo_images is not None:
            elbo = evaluation.elbo(m, elbo_images, kind.pixels(cfg), elbo_labels)
            point["test_elbo"] = elbo["elbo_nats"]
        if getattr(m, "generator_ema", None) is not None:  # the raw generator of the same run
            raw = evaluation.samples(m, args.num, generator="raw")
            point.update({f"raw_{k}": v for k, v in scorer(raw).items()})
        print(
            f"  {arm} {spent / 60:5.2f} min, {steps} steps: "
            + ", ".join(f"{k} {v:.3f}" for k, v in point.items()),
            flush=True,
        )
        return point

    budget = TimeBudget(minutes * 60, args.every, probe, cfg.train.batch_size)
    labels = kind.labels(cfg, dataset.train_labels, "train")
    ds = data.pipeline(dataset.train, cfg, kind.pixels(cfg), training=True, labels=labels)
    print(
        f"{arm}: precision {policy} ({why}), batch {cfg.train.batch_size}, budget {minutes:g} min",
        flush=True,
    )
    wall = time.perf_counter()
    model.fit(
        ds.repeat(),
        epochs=1,
        steps_per_epoch=10**9,
        callbacks=[budget],
        verbose=0,
        shuffle=False,
    )
    return {
        "arm": arm,
        "preset": preset,
        "overrides": sets,
        "precision": policy,
        "batch_size": cfg.train.batch_size,
        "budget_minutes": minutes,
        "points": budget.points,
        "wall_seconds_including_scoring": round(time.perf_counter() - wall, 1),
        "grids": str(folder.relative_to(grids.parent)),
    }


def make_scorer(scoring: str, dataset, num: int):
    """A function of generated uint8 images (and the labels they were drawn for, if any) ->
    metrics, and the real-data floor."""
    from gan_vae_tf import classifier, metrics, quality

    n = quality.reference_size(num, len(dataset.test))
    real, reference = quality.real_sets(dataset.test, n)
    if scoring == "digits":
        clf, accuracy = classifier.train_or_load(
            "mnist", dataset.train, dataset.train_labels, dataset.test, dataset.test_labels
        )
        keys = tuple(METRICS["digits"])
        first = quality.classifier_quality(clf, real, reference, reference)
        floor = {k: first["real_floor"][k] for k in keys}

        def score(fake, requested=None):
            q = quality.classifier_quality(clf, real, reference, fake[:n])
            point = {k: float(q["model"][k]) for k in keys}
            if requested is not None:
                asked = metrics.class_accuracy(requested, classifier.predict(clf, fake))
                point["accuracy"] = asked["accuracy"]
                point["lowest_class_accuracy"] = min(a for a in asked["per_class"] if a is not None)
            return point

        return score, floor, {"classifier_test_accuracy": accuracy, "images_per_score": n}

    floor = quality.patch_quality(real, reference, reference)["real_floor"]

    def score(fake, requested=None):
        return {"swd": float(quality.patch_quality(real, reference, fake[:n])["model"]["swd"])}

    return score, floor, {"images_per_score": n}


def baseline_value(arm: dict, key: str, minutes: float) -> float:
    """The arm's `key` at its probe for `minutes` of training: the first one taken at or after
    them (TimeBudget probes once the time is spent, so a little after), else its last."""
    after = [p for p in arm["points"] if p["train_seconds"] >= minutes * 60 - 1e-6]
    return (after or arm["points"][-1:])[0][key]


def _first_probe(arm: dict) -> float | None:
    """Training seconds of the arm's first probe after its untrained one."""
    return next((p["train_seconds"] for p in arm["points"] if p["train_seconds"] > 0), None)


def _minutes_cell(seconds: float | None, early: bool, measured: bool, arm: dict) -> str:
    """One arm's time to a threshold; an arm that does not measure the metric (an
    unconditional model's class accuracy) has none."""
    if not measured:
        return "n/a (not measured)"
    if seconds is None:
        return f"> {arm['budget_minutes']:g} (not reached)"
    return ("<= " if early else "") + f"{seconds / 60:.1f}"


def thresholds_table(suite: str, arms: list[dict], floor: dict) -> tuple[list, str]:
    """Minutes each arm took to reach each threshold, and the first arm's time over the last's:
    a lower bound when the first arm never got there (">", counted as its whole budget) or the
    last got there by its first probe, which bounds its time from above ("<=" and ">=")."""
    rows, lines = [], []
    names = [a["arm"] for a in arms]
    lines += [
        "| threshold | "
        + " | ".join(f"minutes, {n}" for n in names)
        + (" | ratio (first / last)" if len(arms) > 1 else "")
        + " |",
        "|---|" + "---|" * (len(arms) + (1 if len(arms) > 1 else 0)),
    ]
    for key, op, value, times_floor in THRESHOLDS[suite]:
        if value == BASELINE:
            minutes = min(arms[0]["budget_minutes"], BASELINE_MINUTES)
            target = baseline_value(arms[0], key, minutes)
            label = f"{key} {op} {target:.4g} ({names[0]} at {minutes:g} min)"
        else:
            target = value if value is not None else times_floor * floor[key]
            label = (
                f"{key} {op} {target:g}"
                if times_floor is None
                else f"{key} {op} {times_floor:g}x floor ({target:.3g})"
            )
        times = [reached(a["points"], key, op, target) for a in arms]
        # Met at an arm's first probe after the start: it got there somewhere before that probe.
        early = [t is not None and t == _first_probe(a) for t, a in zip(times, arms, strict=True)]
        measured = [any(key in p for p in a["points"]) for a in arms]
        cells = [_minutes_cell(*cell) for cell in zip(times, early, measured, arms, strict=True)]
        ratio, lower_bound = None, times[0] is None or early[-1]
        if len(arms) > 1 and times[-1] is not None and measured[0]:
            first = times[0] if times[0] is not None else arms[0]["budget_minutes"] * 60
            ratio = first / max(times[-1], 1e-9)
            bound = "> " if times[0] is None else ">= " if lower_bound else ""
            cells.append(bound + f"{ratio:.1f}x")
        elif len(arms) > 1:
            cells.append("n/a")
        rows.append(
            {
                "threshold": label,
                "seconds": times,
                "ratio": ratio,
                "ratio_is_lower_bound": lower_bound,
            }
        )
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return rows, "\n".join(lines)


def metric_keys(suite: str) -> list[tuple[str, bool]]:
    """(metric, lower is better) of the suite's points, in display order."""
    spec = SUITES[suite]
    keys = list(METRICS[spec["scoring"]].items())
    if spec.get("conditional"):
        keys += [("accuracy", False), ("lowest_class_accuracy", False)]
    return ([("test_elbo", False)] if spec.get("elbo") else []) + keys


LABELS = {
    "test_elbo": "test ELBO, nats per image (higher is better)",
    "classifier_score": "classifier score (higher is better)",
    "fid": "FID, classifier features (lower is better)",
    "swd": "SWD x 1e3, Laplacian patches (lower is better)",
    "accuracy": "share of samples seen as the class asked for",
}


def curves(suite: str, arms: list[dict], floor: dict, path: Path, title: str) -> None:
    from matplotlib.figure import Figure

    keys = [(k, lower) for k, lower in metric_keys(suite) if k in LABELS]
    legend = 0.2 * (len(arms) + 1)  # inches below the panels: a row per arm, one for the floor
    height = 3.9 + legend
    fig = Figure(figsize=(5.2 * len(keys), height))
    axes = fig.subplots(1, len(keys), squeeze=False)
    for ax, (key, log) in zip(axes[0], keys, strict=True):
        for i, a in enumerate(arms):
            if key not in a["points"][-1]:
                continue  # e.g. class accuracy, for an unconditional arm
            # An untrained model's ELBO is thousands of nats below the rest: it would flatten
            # every curve, so that panel starts at the first trained point.
            points = [p for p in a["points"] if key != "test_elbo" or p["steps"] > 0]
            (line,) = ax.plot(
                [p["train_seconds"] / 60 for p in points],
                [p[key] for p in points],
                marker="o",
                ms=3,
                color=f"C{i}",  # an arm keeps its colour in a panel that skips another
                label=a["arm"],
            )
            if f"raw_{key}" in a["points"][-1]:
                ax.plot(
                    [p["train_seconds"] / 60 for p in points],
                    [p[f"raw_{key}"] for p in points],
                    ls="--",
                    color=line.get_color(),
                    lw=1,
                    label=f"{a['arm']}, raw generator (no EMA)",
                )
        if key in floor:
            ax.axhline(floor[key], color="gray", ls="--", label="real data (floor)")
        for k, _, value, _ in THRESHOLDS[suite]:
            if k == key and value not in (None, BASELINE):
                ax.axhline(value, color="tab:red", ls=":", lw=0.8)
        ax.set_xlabel("minutes of training (scoring not charged)")
        ax.set_ylabel(LABELS[key])
        if log:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    # One legend under the panels: arm names can be long (preset:overrides), and inside an
    # axes they covered the curves. Gathered from every panel: the floor has no line in some.
    pairs = {}
    for ax in axes[0]:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            pairs.setdefault(label, handle)
    fig.legend(
        list(pairs.values()), list(pairs), loc="lower center", fontsize=7, ncol=2, frameon=False
    )
    fig.suptitle(title, fontsize=9)
    fig.tight_layout(rect=(0, legend / height + 0.02, 1, 1))
    fig.savefig(path, dpi=100)


def compare_grids(
    suite: str, arms: list[dict], grids: Path, minutes: list[float], path: Path, title: str
) -> None:
    """One row per chosen minute, one column per arm: the same 16 noise vectors' samples at the
    probe nearest that minute, each titled with its score."""
    from matplotlib.figure import Figure
    from PIL import Image

    key = "classifier_score" if SUITES[suite]["scoring"] == "digits" else "swd"
    fig = Figure(figsize=(3.2 * len(arms), 3.4 * len(minutes)))
    axes = fig.subplots(len(minutes), len(arms), squeeze=False)
    for row, minute in enumerate(minutes):
        for col, a in enumerate(arms):
            point = min(a["points"], key=lambda p: abs(p["train_seconds"] / 60 - minute))
            png = grids.parent / a["grids"] / f"minute_{point['train_seconds'] / 60:05.2f}.png"
            ax = axes[row][col]
            ax.imshow(np.asarray(Image.open(png)), cmap="gray")
            ax.set_title(
                f"{a['arm']}\n{point['train_seconds'] / 60:.1f} min, {point['steps']} steps, "
                f"{key.replace('_', ' ')} {point[key]:.2f}",
                fontsize=7,
            )
            ax.axis("off")
    fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def markdown(r: dict) -> str:
    m = r["machine"]
    lines = [
        f"Suite {r['suite']}: arms trained for "
        + ", ".join(f"{a['budget_minutes']:g}" for a in r["arms"])
        + f" minutes on {m['cpu']} ({m['cores']} cores), one arm at a time, scored every "
        + f"{r['every_seconds']:g} s on {r['extra']['images_per_score']} generated images "
        + "against as many held-out real ones"
        + (
            f", test ELBO on {ELBO_IMAGES} held-out images"
            if SUITES[r["suite"]].get("elbo")
            else ""
        )
        + " (scoring time not charged).",
        "",
    ]
    lines += [r["thresholds_markdown"], ""]
    keys = [k for k, _ in metric_keys(r["suite"])]
    for a in r["arms"]:
        cols = keys + [f"raw_{k}" for k in keys if f"raw_{k}" in a["points"][-1]]
        lines += [
            f"**{a['arm']}** ({a['precision']}, batch {a['batch_size']}, "
            f"{a['budget_minutes']:g} minutes)"
            + (
                "; raw_* columns: the raw generator of the same run, without its EMA"
                if len(cols) > len(keys)
                else ""
            ),
            "",
            "| minutes | steps | images seen | " + " | ".join(cols) + " |",
            "|---|---|---|" + "---|" * len(cols),
        ]
        for p in a["points"]:
            lines.append(
                f"| {p['train_seconds'] / 60:.1f} | {p['steps']} | {p['images_seen']} | "
                + " | ".join(f"{p[k]:.3g}" if k in p else "—" for k in cols)
                + " |"
            )
        floor = [r["floor"].get(k.removeprefix("raw_")) for k in cols]
        lines.append(
            "| real data (floor) | | | "
            + " | ".join("" if f is None else f"{f:.3g}" for f in floor)
            + " |"
        )
        lines.append("")
    return "\n".join(lines)


def write_results(header: dict, results: list[dict], out: Path, name: str) -> dict:
    """quality-<suite>.{json,md,png} and the side-by-side grids of the arms finished so far;
    `header` holds what the whole suite shares (machine, data, floor, budget)."""
    suite, floor, minutes = header["suite"], header["floor"], header["budget_minutes"]
    rows, table = thresholds_table(suite, results, floor)
    result = {**header, "thresholds": rows, "thresholds_markdown": table, "arms": results}
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / f"{name}.md").write_text(markdown(result))
    title = (
        f"{suite}: {header['machine']['cpu']} ({header['machine']['cores']} cores), "
        f"{header['extra']['images_per_score']} samples per point, scoring not charged"
    )
    curves(suite, results, floor, out / f"{name}.png", title)
    marks = sorted({1.0, minutes / 2, minutes})
    compare_grids(suite, results, out / f"{name}-grids", marks, out / f"{name}-grids.png", title)
    return result


def main(argv=None) -> int:
    console.setup()  # TensorFlow's start-up and grappler chatter stays off the output
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--suite", choices=(*SUITES, "all"), default="mnist")
    p.add_argument(
        "--arms",
        nargs="+",
        help="presets (preset:section.key=value,...) to compare; "
        "default: the suite's report preset and default preset",
    )
    p.add_argument("--minutes", type=float, help="training budget per arm (mnist 10, anime 30)")
    p.add_argument(
        "--baseline-minutes",
        type=float,
        help="a longer budget for the first arm (the baseline the ratio divides), so that its "
        "time to a threshold is measured instead of bounded by --minutes",
    )
    p.add_argument("--every", type=float, default=60.0, help="seconds of training between scores")
    p.add_argument("--num", type=int, help="generated images per score (mnist 2000, anime 1000)")
    p.add_argument("--precision", help="override every arm's precision (default: the preset's)")
    p.add_argument("--data-dir", default=os.environ.get("GAN_VAE_TF_DATA_DIR"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(ROOT / "experiments" / "bench"))
    p.add_argument("--tag", default="", help="suffix of the output names (for ablations)")
    args = p.parse_args(argv)
    for flag in ("minutes", "baseline_minutes", "every"):
        if getattr(args, flag) is not None and getattr(args, flag) <= 0:
            p.error(f"--{flag.replace('_', '-')} must be positive, got {getattr(args, flag)}")

    from dataclasses import replace

    from gan_vae_tf import config as config_lib
    from gan_vae_tf import data
    from gan_vae_tf.errors import UserError

    for suite in SUITES if args.suite == "all" else (args.suite,):
        spec = SUITES[suite]
        arms = args.arms or list(spec["arms"])
        minutes, num = args.minutes or spec["minutes"], args.num or spec["num"]
        run_args = argparse.Namespace(**{**vars(args), "minutes": minutes, "num": num})
        cfg = config_lib.preset(parse_arm(arms[0])[0])
        if args.data_dir:
            cfg = replace(cfg, data=replace(cfg.data, data_dir=args.data_dir))
        try:
            dataset = data.load(cfg.data)
        except UserError as e:
            return errors.report(e)
        if spec["scoring"] == "digits" and dataset.train_labels is None:
            return errors.report(
                UserError(f"the {suite} suite needs labelled digits to train its classifier")
            )
        scorer, floor, extra = make_scorer(spec["scoring"], dataset, num)
        print(
            f"{suite}: {len(dataset.train)} train images from {dataset.source}; floor {floor}",
            flush=True,
        )
        out = Path(args.out)
        name = f"quality-{suite}{args.tag}"
        grids = out / f"{name}-grids"
        header = {
            "suite": suite,
            "machine": {
                "cpu": cpu_name(),
                "cores": os.cpu_count(),
                "python": platform.python_version(),
            },
            "data": dataset.source,
            "train_images": len(dataset.train),
            "budget_minutes": minutes,
            "every_seconds": args.every,
            "floor": floor,
            "extra": extra,
        }
        results: list[dict] = []
        for i, arm in enumerate(arms):
            arm_minutes = (args.baseline_minutes or minutes) if i == 0 else minutes
            results.append(run_arm(arm, suite, dataset, scorer, run_args, grids, arm_minutes))
            # Written after every arm, so a run that dies later keeps the arms it finished.
            result = write_results(header, results, out, name)
        print(markdown(result), flush=True)
    return 0


if __name__ == "__main__":
    errors.exit_with(main)
