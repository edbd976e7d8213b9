"""Choosing the dtype policy: half precision where the hardware makes it pay."""

from __future__ import annotations

import platform
from pathlib import Path

import tensorflow as tf

# `auto` picks bfloat16 on a CPU only with AMX, whose tiles oneDNN runs bf16 matmuls on. Without
# AMX, bf16 is slower than float32 on some AVX512-BF16 CPUs and on the others gains too little
# per step to make up for learning less per step (experiments/RESULTS.md, "Precision").
_BF16_FLAGS = ("amx_bf16",)


def cpu_name(cpuinfo: str = "/proc/cpuinfo") -> str:
    """The CPU's model name ("AMD EPYC ..."), for every figure that depends on it."""
    try:
        for line in Path(cpuinfo).read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> set[str]:
    try:
        for line in Path(cpuinfo).read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def resolve(
    precision: str, gpus: int | None = None, flags: set[str] | None = None
) -> tuple[str, str]:
    """The Keras dtype policy for `precision`, and why it was chosen.

    `auto`: mixed_float16 on a GPU (tensor cores), mixed_bfloat16 on a CPU with AMX (oneDNN
    runs bf16 matmuls on its tiles), float32 otherwise (bf16 runs slower than float32 there,
    AVX512-BF16 included).
    """
    if precision != "auto":
        return precision, "asked for"
    gpus = len(tf.config.list_physical_devices("GPU")) if gpus is None else gpus
    if gpus:
        return "mixed_float16", f"{gpus} GPU(s) found"
    flags = cpu_flags() if flags is None else flags
    native = [f for f in _BF16_FLAGS if f in flags]
    if native:
        return "mixed_bfloat16", f"CPU has {', '.join(native)}"
    return "float32", "no GPU and no AMX on this CPU"
