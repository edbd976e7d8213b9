"""What a checkpoint costs: seconds per save of each preset's full training state, beside the
seconds of one epoch of that preset, measured in one process on this machine.

A save is `RunState.save` as training calls it (weights, optimizer states, EMA, RNG states,
written to a temporary folder, fsynced and swapped in), so the figure is what a mid-epoch
`--checkpoint-every` save adds to a run. Writes experiments/bench/checkpoint.{json,md}.

    python -m benchmarks.bench_checkpoint [--presets gan-anime gan-mnist] [--saves 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.common import OUT, cpu_name, images_for, preset_config, project_model
from gan_vae_tf import console, errors, rundir


def measure(preset: str, data_dir: str | None, saves: int, steps: int) -> dict:
    import numpy as np

    from gan_vae_tf import checkpoint, data

    cfg = preset_config(preset, data_dir)
    images, source = images_for(cfg, max(cfg.train.batch_size * 8, 512))
    model, ds, policy = project_model(cfg, images, warmup_steps=3)
    start = time.perf_counter()
    model.fit(ds, epochs=1, steps_per_epoch=steps, verbose=0, shuffle=False)
    step_s = (time.perf_counter() - start) / steps
    epoch_steps = cfg.train.steps_per_epoch
    if epoch_steps is None and not source.startswith("synthetic"):  # one pass over the data
        epoch_steps = len(data.load(cfg.data).train) // cfg.train.batch_size
    state = checkpoint.RunState(model, {"noise": np.zeros((16, 4), "float32")})
    times = []
    OUT.mkdir(parents=True, exist_ok=True)
    # On the disk the runs go to, not /tmp (a tmpfs on some machines would make fsync free).
    with tempfile.TemporaryDirectory(dir=OUT) as folder:
        run_dir = Path(folder)
        for i in range(saves):
            start = time.perf_counter()
            state.save(run_dir, checkpoint.Position(0, i + 1, 0.0, epoch_steps))
            times.append(time.perf_counter() - start)
        size = sum(
            f.stat().st_size for f in rundir.RunDir(run_dir).checkpoint.rglob("*") if f.is_file()
        )
    save_s = statistics.median(times)
    epoch_s = epoch_steps * step_s if epoch_steps else None  # None: no data to size an epoch
    return {
        "preset": preset,
        "precision": policy,
        "data": source,
        "batch": cfg.train.batch_size,
        "save_seconds_median": round(save_s, 3),
        "save_seconds_all": [round(t, 3) for t in times],
        "checkpoint_mb": round(size / 1e6, 1),
        "step_seconds": round(step_s, 4),
        "steps_per_epoch": epoch_steps,
        "epoch_seconds": round(epoch_s, 1) if epoch_s else None,
        "share_of_epoch": round(save_s / epoch_s, 4) if epoch_s else None,
        "share_of_5_min_interval": round(save_s / 300, 4),
    }


def markdown(rows: list[dict], cpu: str) -> str:
    lines = [
        f"Checkpoint cost on {cpu}: median of the saves' wall times (temporary folder, fsync, "
        "swap), one preset at a time; the epoch time is steps per epoch x the measured "
        "seconds per training step.",
        "",
        "| preset | precision | checkpoint MB | seconds per save | seconds per epoch "
        "(steps) | save / epoch | save / 5-min interval |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        epoch, share = "n/a (no data)", "n/a"
        if r["epoch_seconds"]:
            epoch = f"{r['epoch_seconds']:.0f} ({r['steps_per_epoch']})"
            share = f"{100 * r['share_of_epoch']:.2f}%"
        lines.append(
            f"| {r['preset']} | {r['precision']} | {r['checkpoint_mb']} | "
            f"{r['save_seconds_median']:.2f} | {epoch} | {share} | "
            f"{100 * r['share_of_5_min_interval']:.2f}% |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    console.setup()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--presets", nargs="+", default=["gan-anime", "gan-anime-report", "gan-mnist"])
    p.add_argument("--saves", type=int, default=5)
    p.add_argument("--steps", type=int, default=30, help="training steps timed per preset")
    p.add_argument("--data-dir")
    p.add_argument("--out", default=str(OUT))
    args = p.parse_args()
    cpu = cpu_name()
    rows = []
    for preset in args.presets:
        row = measure(preset, args.data_dir, args.saves, args.steps)
        print(
            f"{preset}: {row['save_seconds_median']:.2f} s per save ({row['checkpoint_mb']} MB), "
            f"epoch {row['epoch_seconds']} s, share of an epoch {row['share_of_epoch']}",
            flush=True,
        )
        rows.append(row)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "checkpoint.json").write_text(json.dumps({"cpu": cpu, "rows": rows}, indent=1) + "\n")
    (out / "checkpoint.md").write_text(markdown(rows, cpu))
    print(markdown(rows, cpu))


if __name__ == "__main__":
    errors.exit_with(main)
