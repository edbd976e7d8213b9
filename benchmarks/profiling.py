"""Where a train step's time goes: a TensorFlow profiler trace of a few `fit()` steps, summed
into a handful of categories (convolutions, matmuls, batch norm, dropout, random numbers,
optimizer, input pipeline, the rest).

The trace is converted with the profiler's own `framework_op_stats` tool, which ships with
TensorFlow (no TensorBoard plugin needed). Shares are of busy self-time: the profiler's IDLE
rows (threads waiting) are left out.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections import defaultdict
from pathlib import Path

CATEGORIES = (
    "convolutions",
    "matmul",
    "batch norm",
    "dropout",
    "random numbers",
    "optimizer",
    "input pipeline",
    "activations and other elementwise",
)

_INPUT = (
    "IteratorGetNext",
    "Dataset",
    "PyFunc",
    "PyFuncStateless",
    "EagerPyFunc",
    "MultiDeviceIteratorGetNextFromShard",
)


def op_category(op_type: str, op_name: str) -> str:
    """The category of one profiled op, from its type first and its name scope second: dropout's
    mask is random numbers and elementwise ops that only its scope gives away. oneDNN builds
    rename ops (`_MklNativeConv2DBackpropInput`, `_MklMatMul`); the prefix is dropped first."""
    name = op_name.lower()
    op_type = re.sub(r"^_Mkl(Native)?", "", op_type)
    if "Conv2D" in op_type:
        return "convolutions"
    if "MatMul" in op_type:
        return "matmul"
    if op_type in _INPUT or op_type.startswith("Iterator"):
        return "input pipeline"
    if "dropout" in name:
        return "dropout"
    if "batch_normalization" in name or "batchnorm" in op_type.lower():
        return "batch norm"
    if "Random" in op_type:
        return "random numbers"
    if "adam" in name or "optimizer" in name or op_type.startswith(("ResourceApply", "Assign")):
        return "optimizer"
    return "activations and other elementwise"


def summarize(rows: list[dict]) -> dict:
    """Self-time per category and per op type (microseconds, IDLE excluded) and their shares."""
    by_category: dict[str, float] = defaultdict(float)
    by_type: dict[str, float] = defaultdict(float)
    for row in rows:
        if row["type"] == "IDLE":
            continue
        t = float(row["total_self_time"])
        by_category[op_category(row["type"], row["operation"])] += t
        by_type[row["type"]] += t
    busy = sum(by_category.values())
    if busy <= 0:
        raise ValueError("the trace holds no busy op time")

    def share(d: dict[str, float]) -> dict[str, float]:
        return {k: v / busy for k, v in sorted(d.items(), key=lambda kv: -kv[1])}

    return {"busy_us": busy, "categories": share(by_category), "op_types": share(by_type)}


def op_rows(xplane_path: str | Path) -> list[dict]:
    """The rows of the profiler's framework_op_stats table for one trace file."""
    from tensorflow.python.profiler.internal import _pywrap_profiler_plugin as plugin

    raw, ok = plugin.xspace_to_tools_data([str(xplane_path)], "framework_op_stats", {})
    if not ok:
        raise RuntimeError(f"the profiler could not read {xplane_path}: {raw[:200]!r}")
    table = json.loads(raw)[0]
    cols = [c["id"] for c in table["cols"]]
    return [dict(zip(cols, (cell.get("v") for cell in r["c"]), strict=True)) for r in table["rows"]]


def profile_fit(model, dataset, steps: int, logdir: str | Path | None = None) -> dict:
    """Trace `steps` steps of `model.fit(dataset)` (already warmed up by the caller) and
    summarize them."""
    import tensorflow as tf

    logdir = Path(logdir or tempfile.mkdtemp(prefix="gan_vae_tf_profile_"))
    tf.profiler.experimental.start(str(logdir))
    try:
        model.fit(dataset, epochs=1, steps_per_epoch=steps, verbose=0, shuffle=False)
    finally:
        tf.profiler.experimental.stop()
    traces = sorted(logdir.glob("plugins/profile/*/*.xplane.pb"))
    if not traces:
        raise RuntimeError(f"the profiler wrote no trace under {logdir}")
    return {**summarize(op_rows(traces[-1])), "steps": steps, "trace": str(traces[-1])}
