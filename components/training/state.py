"""A training checkpoint: weights, optimiser, step, RNG states, resolved config, dataset version.

Serialised to bytes so it can travel through Ray Train's checkpoint directories and any fsspec
storage; `capture_rng`/`restore_rng` make a resumed run draw the same random numbers it would have.
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

FORMAT = "corrvos-training/1"


def capture_rng() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@dataclass
class TrainingState:
    step: int
    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    rng: dict[str, Any]
    config: dict[str, Any]
    dataset_version: str
    scaler: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        torch.save({"format": FORMAT, **self.__dict__}, buffer)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, blob: bytes) -> "TrainingState":
        payload = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=False)
        if payload.pop("format", None) != FORMAT:
            raise ValueError(f"not a corrvos training checkpoint (expected {FORMAT})")
        return cls(**payload)
