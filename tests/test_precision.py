import pytest

from gan_vae_tf import precision


@pytest.mark.parametrize(
    "gpus, flags, expected",
    [
        (1, set(), "mixed_float16"),
        (0, {"avx2", "amx_bf16", "amx_tile"}, "mixed_bfloat16"),
        (0, {"avx512f", "avx512_bf16"}, "float32"),  # no AMX: bf16 measured slower than float32
        (0, {"avx2", "fma"}, "float32"),
    ],
)
def test_auto_picks_half_precision_only_where_the_hardware_runs_it_natively(gpus, flags, expected):
    policy, reason = precision.resolve("auto", gpus=gpus, flags=flags)
    assert policy == expected and reason


def test_an_explicit_precision_is_kept():
    assert precision.resolve("mixed_bfloat16", gpus=1, flags=set())[0] == "mixed_bfloat16"


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor : 0\nflags\t\t: fpu avx2 amx_bf16\n")
    assert {"avx2", "amx_bf16"} <= precision.cpu_flags(str(info))
    assert precision.cpu_flags(str(tmp_path / "missing")) == set()
