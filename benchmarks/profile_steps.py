"""Profile a few train steps of each preset and print where the time goes.

`make profile` (or `python -m benchmarks.profile_steps --presets gan-mnist`) traces the project's own
training path (the same model, pipeline and precision as `train.py`) with the TensorFlow
profiler, then sums op self-time into categories. Writes experiments/bench/profile.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from benchmarks import common, profiling
from gan_vae_tf import console, errors

STEPS = {"gan-mnist": 6, "vae-mnist": 150, "gan-anime": 3, "vae-anime": 6}


def profile_preset(preset: str, steps: int, data_dir: str | None) -> dict:
    cfg = common.preset_config(preset, data_dir)
    images, source = common.images_for(cfg, 4096)
    model, ds, policy = common.project_model(cfg, images, warmup_steps=max(2, steps // 3))
    start = time.perf_counter()
    summary = profiling.profile_fit(model, ds, steps)
    wall = time.perf_counter() - start
    return {
        "preset": preset,
        "data": source,
        "precision": policy,
        "batch_size": cfg.train.batch_size,
        "traced_wall_seconds": wall,
        **summary,
    }


def markdown(results: list[dict], cores: int) -> str:
    lines = [
        f"Share of busy op self-time per category ({cores} cores; profiler overhead included "
        "in the wall time).",
        "",
    ]
    header = ["category"] + [
        f"{r['preset']} ({r['steps']} steps x {r['batch_size']})" for r in results
    ]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for cat in profiling.CATEGORIES:
        cells = [f"{100 * r['categories'].get(cat, 0.0):.1f}%" for r in results]
        lines.append(f"| {cat} | " + " | ".join(cells) + " |")
    busy = [f"{r['busy_us'] / 1e6 / r['traced_wall_seconds'] / cores:.0%}" for r in results]
    lines.append("| busy op time / (wall time x cores) | " + " | ".join(busy) + " |")
    lines += ["", "Top op types:", ""]
    for r in results:
        top = ", ".join(f"{k} {100 * v:.1f}%" for k, v in list(r["op_types"].items())[:6])
        lines.append(f"- {r['preset']}: {top}")
    return "\n".join(lines) + "\n"


def main() -> int:
    console.setup()  # TensorFlow's start-up and grappler chatter stays off the output
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--presets", default=",".join(STEPS))
    p.add_argument("--steps", type=int, help=f"traced steps (default per preset: {STEPS})")
    p.add_argument("--data-dir", default=os.environ.get("GAN_VAE_TF_DATA_DIR"))
    p.add_argument("--out", default=str(common.OUT))
    args = p.parse_args()
    results = []
    for preset in args.presets.split(","):
        r = profile_preset(preset, args.steps or STEPS.get(preset, 5), args.data_dir)
        top = ", ".join(f"{k} {100 * v:.0f}%" for k, v in r["categories"].items() if v >= 0.01)
        print(f"{preset}: {top}", flush=True)
        results.append(r)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "profile.json").write_text(json.dumps(results, indent=2) + "\n")
    md = markdown(results, os.cpu_count() or 1)
    (out / "profile.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    errors.exit_with(main)
