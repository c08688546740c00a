"""Which floating-point precision a device runs: bf16 autocast where the hardware has native bf16.

`precision: auto` (training stages and inference) means bf16 autocast on a GPU that supports it and
on a CPU with native bf16 instructions (AVX512-BF16 or AMX), fp32 elsewhere: on a CPU without them
oneDNN emulates bf16, which is slower than fp32. The losses run in fp32 either way (`compute_losses`).
"""

from __future__ import annotations

import functools
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import torch

CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def parse_cpu_flags(cpuinfo: str) -> set[str]:
    """The feature flags of a Linux /proc/cpuinfo text (the first `flags` line; every core has the same)."""
    for line in cpuinfo.splitlines():
        name, _, value = line.partition(":")
        if name.strip() == "flags":
            return set(value.split())
    return set()


@functools.cache
def cpu_has_native_bf16(cpuinfo_path: str = "/proc/cpuinfo") -> bool:
    """True when this CPU has bf16 instructions oneDNN uses; False where that cannot be read (not Linux)."""
    if not torch.backends.mkldnn.is_available():
        return False
    try:
        flags = parse_cpu_flags(Path(cpuinfo_path).read_text())
    except OSError:
        return False
    return any(flag in flags for flag in CPU_BF16_FLAGS)


def has_native_bf16(device: torch.device) -> bool:
    """Whether `device` runs bf16 natively: a GPU with bf16 support, or a CPU with bf16 instructions."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return cpu_has_native_bf16()
    return False


def uses_bf16(device: torch.device, precision: str) -> bool:
    """`bf16` always, `fp32` never, `auto` where the device has native bf16."""
    if precision not in ("auto", "bf16", "fp32"):
        raise ValueError(f"precision must be auto, bf16 or fp32, not {precision!r}")
    return precision == "bf16" or (precision == "auto" and has_native_bf16(device))


def resolved_precision(precision: str, device_type: str) -> str:
    """`"bf16"` or `"fp32"`: what `precision` runs in on a `device_type` (`"cpu"` or `"cuda"`) device, without one.

    Explicit names are kept. `auto` on `"cpu"` reads this machine's CPU flags (`cpu_has_native_bf16`), as
    `uses_bf16` does on a CPU here. `auto` on `"cuda"` is bf16 on every machine, GPU or not: that is what
    `uses_bf16` gives on any CUDA device with the torch this project allows (>= 2.3), whose
    `torch.cuda.is_bf16_supported()` also counts bf16 emulated on GPUs older than Ampere.
    """
    if precision not in ("auto", "bf16", "fp32"):
        raise ValueError(f"precision must be auto, bf16 or fp32, not {precision!r}")
    if device_type not in ("cpu", "cuda"):
        raise ValueError(f"device type must be cpu or cuda, not {device_type!r}")
    if precision != "auto":
        return precision
    return "bf16" if device_type == "cuda" or cpu_has_native_bf16() else "fp32"


def autocast_for(device: torch.device, precision: str) -> AbstractContextManager:
    """bf16 autocast on `device` when `uses_bf16`, otherwise a no-op context (full precision)."""
    return torch.autocast(device.type, dtype=torch.bfloat16) if uses_bf16(device, precision) else nullcontext()
