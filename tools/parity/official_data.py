"""Deterministic inputs for the parity fixtures: official-layout random weights and a small synthetic video.

The fixtures hold no weights: `spec.json` lists each official key's shape and dtype, and
`random_official_state(spec, seed)` rebuilds the same tensors anywhere (numpy's PCG64 stream), so
`tools/parity/record.py` (with the official code) and the tests (without it) see identical weights.
BatchNorm statistics are random too, so a mis-folded bias or a swapped channel block shows.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

FIXTURES = Path(__file__).resolve().parents[2] / "tests" / "imports" / "fixtures"


def load_spec(path: Path) -> dict[str, tuple[list[int], str]]:
    """key -> (shape, dtype name), in the official state dict's order."""
    return {k: (list(v[0]), str(v[1])) for k, v in json.loads(path.read_text())["keys"].items()}


def spec_of(state: dict[str, torch.Tensor]) -> dict[str, Any]:
    """The spec document of a state dict (what `load_spec` reads)."""
    return {"keys": {k: [list(v.shape), str(v.dtype).removeprefix("torch.")] for k, v in state.items()}}


def random_official_state(spec: dict[str, tuple[list[int], str]], seed: int) -> dict[str, torch.Tensor]:
    """Seeded weights for every key of `spec`: scaled-He convs and linears, random biases and BatchNorm statistics."""
    rng = np.random.default_rng(seed)
    state: dict[str, torch.Tensor] = {}
    for key, (shape, dtype) in spec.items():
        if dtype != "float32":
            state[key] = torch.zeros(shape, dtype=getattr(torch, dtype))
            continue
        leaf = key.rsplit(".", 1)[-1]
        if len(shape) >= 2:  # conv or linear weight: variance 1/fan_in keeps a random 50-layer trunk finite
            fan_in = int(np.prod(shape[1:]))
            value = rng.standard_normal(shape, dtype=np.float32) / np.float32(np.sqrt(fan_in))
        elif leaf == "weight":  # BatchNorm scale
            value = rng.uniform(0.5, 1.0, shape).astype(np.float32)
        elif leaf == "running_var":
            value = rng.uniform(0.5, 1.5, shape).astype(np.float32)
        else:  # biases and running means
            value = (0.1 * rng.standard_normal(shape)).astype(np.float32)
        state[key] = torch.from_numpy(value)
    return state


def synthetic_video(seed: int, frames: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(frames T,H,W,3 uint8, first mask H,W uint8 with ids 1 and 2): smooth noise with two drifting squares."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (frames, height // 8 + 2, width // 8 + 2, 3)).astype(np.float32)
    video = np.repeat(np.repeat(coarse, 8, axis=1), 8, axis=2)[:, :height, :width]
    video = video * 0.5 + rng.integers(0, 128, video.shape)
    mask = np.zeros((height, width), dtype=np.uint8)
    for t in range(frames):
        for obj, (y, x, size, colour) in enumerate(((10, 12, 28, (250, 40, 40)), (44, 40, 24, (40, 60, 240))), 1):
            top, left = y + 2 * t, x + 3 * t * (1 if obj == 1 else -1)
            video[t, top:top + size, left:left + size] = colour
            if t == 0:
                mask[top:top + size, left:left + size] = obj
    return np.clip(video, 0, 255).astype(np.uint8), mask
