"""Choosing the dtype policy: half precision where the hardware makes it pay."""

from __future__ import annotations

import logging
from pathlib import Path

import tensorflow as tf

log = logging.getLogger(__name__)

# Where bfloat16 pays on a CPU, by measurement (benchmarks/bench.py's matmul peak and `make
# bench`, experiments/bench/report-presets-speed.md):
# - AMX, any vendor: oneDNN runs bf16 matmuls on its tiles.
# - AVX512-BF16 on AMD (Zen 4 and later): an EPYC measured 0.83 against 0.46 TFLOP/s, and the
#   report DCGANs trained 1.4x faster.
# - Not AVX512-BF16 on an Intel Xeon without AMX: bf16 measured 2-3.5x slower than float32
#   there (0.03-0.04 against 0.06-0.08 TFLOP/s; a DCGAN-MNIST step 37 against 73-130 img/s).
_BF16_FLAGS = ("amx_bf16",)
_BF16_FLAGS_BY_VENDOR = {"AuthenticAMD": ("avx512_bf16",)}


def cpu_info(cpuinfo: str = "/proc/cpuinfo") -> tuple[str, set[str]]:
    """The CPU's vendor id and flags, as /proc/cpuinfo lists them ("", set() if unreadable)."""
    vendor, flags = "", set()
    try:
        for line in Path(cpuinfo).read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "vendor_id" and not vendor:
                vendor = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = set(value.split())
    except OSError:
        pass
    return vendor, flags


def resolve(
    precision: str,
    gpus: int | None = None,
    flags: set[str] | None = None,
    vendor: str | None = None,
) -> tuple[str, str]:
    """The Keras dtype policy for `precision`, and why it was chosen.

    `auto`: mixed_float16 on a GPU (tensor cores), mixed_bfloat16 on a CPU that runs bf16
    natively and faster (AMX; AVX512-BF16 on AMD), float32 otherwise.
    """
    if precision != "auto":
        return precision, "asked for"
    gpus = len(tf.config.list_physical_devices("GPU")) if gpus is None else gpus
    if gpus:
        return "mixed_float16", f"{gpus} GPU(s) found"
    if flags is None or vendor is None:
        found_vendor, found_flags = cpu_info()
        flags = found_flags if flags is None else flags
        vendor = found_vendor if vendor is None else vendor
    native = [f for f in (*_BF16_FLAGS, *_BF16_FLAGS_BY_VENDOR.get(vendor, ())) if f in flags]
    if native:
        return "mixed_bfloat16", f"{vendor or 'CPU'} has {', '.join(native)}"
    return "float32", f"no GPU, and no bf16 unit that beats float32 on this {vendor or 'CPU'}"
