import pytest

from gan_vae_tf import precision


@pytest.mark.parametrize(
    "gpus, vendor, flags, expected",
    [
        (1, "GenuineIntel", set(), "mixed_float16"),
        (0, "GenuineIntel", {"avx2", "amx_bf16", "amx_tile"}, "mixed_bfloat16"),
        # AVX512-BF16 without AMX: measured 2-3.5x slower than float32 on a Xeon, 1.8x faster
        # (matmul peak) on an EPYC.
        (0, "GenuineIntel", {"avx512f", "avx512_bf16"}, "float32"),
        (0, "AuthenticAMD", {"avx512f", "avx512_bf16"}, "mixed_bfloat16"),
        (0, "AuthenticAMD", {"avx2", "fma"}, "float32"),
        (0, "", {"avx2", "fma"}, "float32"),
    ],
)
def test_auto_picks_half_precision_only_where_the_hardware_runs_it_faster(
    gpus, vendor, flags, expected
):
    policy, reason = precision.resolve("auto", gpus=gpus, flags=flags, vendor=vendor)
    assert policy == expected and reason


def test_an_explicit_precision_is_kept():
    assert precision.resolve("mixed_bfloat16", gpus=1, flags=set())[0] == "mixed_bfloat16"


def test_cpu_vendor_and_flags_are_read_from_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text(
        "processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu avx2 avx512_bf16\n"
        "processor\t: 1\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu avx2 avx512_bf16\n"
    )
    vendor, flags = precision.cpu_info(str(info))
    assert vendor == "AuthenticAMD" and {"avx2", "avx512_bf16"} <= flags
    assert precision.cpu_info(str(tmp_path / "missing")) == ("", set())
