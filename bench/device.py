"""What every benchmark needs of its device: a clock barrier, and a name for the report's first line."""

from __future__ import annotations

import platform

import torch


def synchronise(device: torch.device) -> None:
    """Wait for queued GPU work, so wall-clock time measures it; a no-op on the CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def describe(device: torch.device) -> str:
    """The GPU's name, or the CPU's with the torch thread count (what CPU timings depend on)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} threads"
