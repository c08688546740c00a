"""Inference checkpoints: the inference network's weights plus the model config that built them.

One self-describing file (a torch pickle of plain tensors and dicts), written atomically to any
fsspec URI, so `corrvos predict --model URI` needs nothing else.
"""

from __future__ import annotations

import io
from typing import Any

import torch

from torch import nn

from components.config import ModelConfig, config_from_dict, config_to_dict
from components.errors import ConfigError, CorrvosError
from components.model.factory import build_network
from components.storage import atomic_write_bytes, load_torch

FORMAT = "corrvos-inference/1"


def save_inference_checkpoint(
    uri: str, state_dict: dict[str, torch.Tensor], model_config: ModelConfig, metadata: dict[str, Any] | None = None
) -> None:
    """Write inference weights (no head g) and the model config to `uri` atomically."""
    if any(k.startswith("correspondence_head.") for k in state_dict):
        raise ValueError("an inference checkpoint must not contain the training-only head g")
    buffer = io.BytesIO()
    payload = {
        "format": FORMAT,
        "model_config": config_to_dict(model_config),
        "state_dict": {k: v.detach().cpu() for k, v in state_dict.items()},
        "metadata": dict(metadata or {}),
    }
    torch.save(payload, buffer)
    atomic_write_bytes(uri, buffer.getvalue())


def load_inference_checkpoint(uri: str, device: torch.device | str = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Build the inference network from `uri`; returns (model in eval mode on `device`, metadata)."""
    payload = load_torch(uri, "model", CorrvosError)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CorrvosError(f"model {uri!r}: not a corrvos inference checkpoint (expected format {FORMAT})")
    config_dict = dict(payload["model_config"])
    config_dict["backbone_weights"] = {}  # the checkpoint already holds every weight
    try:
        config = config_from_dict(ModelConfig, config_dict)
    except ConfigError as exc:
        raise CorrvosError(f"model {uri!r}: {exc}") from None
    model = build_network(config)
    model.load_state_dict(payload["state_dict"], strict=True)
    return model.to(device).eval(), dict(payload.get("metadata", {}))
