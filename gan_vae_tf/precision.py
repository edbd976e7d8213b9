"""Choosing the dtype policy: half precision where the hardware makes it pay."""

from __future__ import annotations

import logging
from pathlib import Path

import tensorflow as tf

log = logging.getLogger(__name__)

# `auto` picks bfloat16 on a CPU only with AMX. On a Xeon with AVX512-BF16 but no AMX, TensorFlow's
# bf16 matmuls and convolutions measured 2-3.5x slower than float32 (benchmarks/bench.py's
# matmul peak: 0.03-0.04 against 0.06-0.08 TFLOP/s; a DCGAN-MNIST step 37 against 73-130 img/s).
# On an AMD EPYC with AVX512-BF16, bf16 is faster (matmul peak 1.8x, report DCGANs 1.4x), but
# the default gan-mnist gained only 1.04-1.07x per step and learned less per step in bf16
# (experiments/bench/search/README.md, round 20), so `auto` keeps float32 there too.
_BF16_FLAGS = ("amx_bf16",)


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
