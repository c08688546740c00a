"""Seeded random weights in the official XMem layout, rebuilt from a committed key -> shape list.

Shared by the recorder (`xmem_record.py`, which runs the official code) and the parity test (which
does not): both regenerate the same 62M-parameter state dict from `weights.json` and its seed, so
no weights are committed. Scales keep activations of order one through the random ResNet-50.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

FIXTURE_DIR = Path(__file__).resolve().parents[2] / "tests" / "imports" / "fixtures" / "xmem"
WEIGHTS_JSON = FIXTURE_DIR / "weights.json"
OUTPUTS_NPZ = FIXTURE_DIR / "outputs.npz"


def _is_batchnorm(key: str, keys: set[str]) -> bool:
    """A 1-D `weight`/`bias` belongs to a BatchNorm when the same module has running statistics."""
    module = key.rsplit(".", 1)[0]
    return f"{module}.running_mean" in keys


def generate_state(entries: list[tuple[str, list[int], str]], seed: int) -> dict[str, torch.Tensor]:
    """One tensor per (key, shape, dtype) entry, drawn in list order from one seeded CPU generator."""
    generator = torch.Generator().manual_seed(seed)
    keys = {key for key, _, _ in entries}
    state: dict[str, torch.Tensor] = {}
    for key, shape, dtype in entries:
        if dtype == "int64":
            state[key] = torch.zeros(shape, dtype=torch.long)
            continue
        leaf = key.rsplit(".", 1)[1]
        if leaf == "running_var":
            value = 0.5 + 1.5 * torch.rand(shape, generator=generator)
        elif leaf == "running_mean":
            value = 0.1 * torch.randn(shape, generator=generator)
        elif leaf == "weight" and len(shape) == 1 and _is_batchnorm(key, keys):
            value = 0.5 + 0.5 * torch.rand(shape, generator=generator)
        elif leaf == "bias":
            value = 0.05 * torch.randn(shape, generator=generator)
        else:  # conv / linear weight: variance-preserving scale
            fan_in = math.prod(shape[1:])
            value = torch.randn(shape, generator=generator) / math.sqrt(fan_in)
        state[key] = value.float()
    return state


def load_entries(path: Path = WEIGHTS_JSON) -> tuple[list[tuple[str, list[int], str]], int]:
    """The committed (key, shape, dtype) list in official state-dict order, and the seed."""
    data = json.loads(path.read_text())
    return [(k, list(s), d) for k, s, d in data["entries"]], int(data["seed"])


def official_state(path: Path = WEIGHTS_JSON) -> dict[str, torch.Tensor]:
    """The seeded official-layout XMem state dict the fixtures were recorded with."""
    entries, seed = load_entries(path)
    return generate_state(entries, seed)
