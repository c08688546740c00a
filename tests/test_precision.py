"""`precision: auto` picks bf16 only where the hardware has it; explicit values are obeyed."""

import pytest
import torch

from components.precision import autocast_for, cpu_has_native_bf16, parse_cpu_flags, uses_bf16

CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
flags\t\t: fpu sse2 avx2 avx512f {extra}
bugs\t\t: sysret_ss_attrs

processor\t: 1
flags\t\t: fpu sse2 avx2 avx512f {extra}
"""


def test_flags_are_read_from_the_first_flags_line():
    assert parse_cpu_flags(CPUINFO.format(extra="avx512_bf16")) == {"fpu", "sse2", "avx2", "avx512f", "avx512_bf16"}
    assert parse_cpu_flags("processor : 0\n") == set()


@pytest.mark.parametrize(("extra", "native"), [("avx512_bf16", True), ("amx_bf16 amx_tile", True), ("avx512_vnni", False)])
def test_native_bf16_needs_bf16_instructions_not_just_avx512(tmp_path, extra, native):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(CPUINFO.format(extra=extra))
    expected = native and torch.backends.mkldnn.is_available()
    assert cpu_has_native_bf16(str(cpuinfo)) is expected


def test_unreadable_cpuinfo_means_fp32(tmp_path):
    assert cpu_has_native_bf16(str(tmp_path / "missing")) is False


def test_explicit_precision_wins_over_the_hardware():
    cpu = torch.device("cpu")
    assert uses_bf16(cpu, "bf16") is True
    assert uses_bf16(cpu, "fp32") is False
    assert uses_bf16(cpu, "auto") is cpu_has_native_bf16()
    with autocast_for(cpu, "bf16"):
        assert torch.mm(torch.ones(2, 2), torch.ones(2, 2)).dtype == torch.bfloat16
    with autocast_for(cpu, "fp32"):
        assert torch.mm(torch.ones(2, 2), torch.ones(2, 2)).dtype == torch.float32


def test_unknown_precision_is_an_error_naming_it():
    with pytest.raises(ValueError, match="'fp16'"):
        uses_bf16(torch.device("cpu"), "fp16")
