"""Choosing the dtype policy: half precision where the hardware makes it pay."""
from __future__ import annotations

import logging
from pathlib import Path

import tensorflow as tf

log = logging.getLogger(__name__)

_BF16_FLAGS = ("amx_bf16", "avx512_bf16")


def cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> set[str]:
    try:
        for line in Path(cpuinfo).read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def resolve(precision: str, gpus: int | None = None, flags: set[str] | None = None
            ) -> tuple[str, str]:
    """The Keras dtype policy for `precision`, and why it was chosen.

    `auto`: mixed_float16 on a GPU (tensor cores), mixed_bfloat16 on a CPU whose flags show
    AMX or AVX512-BF16 (oneDNN runs bf16 matmuls natively), float32 otherwise (bf16 would be
    emulated there and run slower than float32).
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
    return "float32", "no GPU and no AMX/AVX512-BF16 on this CPU"
