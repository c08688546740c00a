"""A training checkpoint: weights, optimiser, step, RNG states, resolved config, dataset version.

The config it stores is `public_config`'d: storage secrets hidden, tracking URI without a password.

Serialised to bytes so it can travel through Ray Train's checkpoint directories and any fsspec
storage; `capture_rng`/`restore_rng` make a resumed run draw the same random numbers it would have.
Everything in it is tensors and plain containers, so it loads with `weights_only=True`: whoever can
write to the storage root (a shared bucket) cannot make a resuming worker run code.
"""

from __future__ import annotations

import io
import pickle
import random
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from components.secrets import public_config

FORMAT = "corrvos-training/2"  # /1 held numpy RNG state as an array, which only full unpickling reads


def capture_rng() -> dict[str, Any]:
    """Python, numpy and torch RNG states as tensors and plain values (no numpy objects: weights-only loadable)."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),  # (version, tuple of ints, None)
        "numpy": {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    numpy = state["numpy"]
    np.random.set_state((numpy["name"], numpy["keys"].numpy().astype(np.uint32), numpy["pos"], numpy["has_gauss"],
                         numpy["cached_gaussian"]))
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

    def __post_init__(self) -> None:
        self.config = public_config(self.config)  # whoever reads a checkpoint never reads a secret

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        torch.save({"format": FORMAT, **self.__dict__}, buffer)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, blob: bytes) -> "TrainingState":
        try:
            payload = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
        except pickle.UnpicklingError:
            raise ValueError(f"not a {FORMAT} checkpoint: it holds objects other than tensors and plain "
                             "values, which are never unpickled (an older corrvos format, or not corrvos's)") from None
        if not isinstance(payload, dict) or payload.pop("format", None) != FORMAT:
            raise ValueError(f"not a corrvos training checkpoint (expected {FORMAT})")
        return cls(**payload)
