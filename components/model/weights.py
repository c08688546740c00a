"""Load ImageNet (torchvision-format) weights into a trunk from a local file or any fsspec URI.

Keys the trunk does not have (layer4, fc) are ignored; a first conv with extra mask channels
takes the RGB filters and orthogonally initialised filters for the extra ones, as STCN's and XMem's
`load_weights_sequential` / `load_weights_add_extra_dim` do.
"""

from __future__ import annotations

import torch
from torch import nn

from components.errors import ConfigError
from components.storage import load_torch


def read_state_dict(uri: str) -> dict[str, torch.Tensor]:
    """Read a torch state dict (optionally wrapped as {'state_dict': ...}) from a path or URI."""
    state = load_torch(uri, "backbone weights", ConfigError)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ConfigError(f"backbone weights {uri!r}: expected a state dict, got {type(state).__name__}")
    return state


def widen_first_conv(rgb_weight: torch.Tensor, current: torch.Tensor) -> torch.Tensor:
    """The RGB filters followed by orthogonally initialised filters for the first conv's extra channels (STCN)."""
    extra = current.shape[1] - rgb_weight.shape[1]
    return add_input_channels(rgb_weight.to(current.dtype), extra).to(current.device)


def add_input_channels(weight: torch.Tensor, extra: int) -> torch.Tensor:
    """Append `extra` orthogonally initialised input channels to a conv weight (O, I, k, k)."""
    pad = torch.empty(weight.shape[0], extra, *weight.shape[2:], dtype=weight.dtype)
    nn.init.orthogonal_(pad)
    return torch.cat([weight, pad], dim=1)


def load_trunk_weights(trunk: nn.Module, uri: str) -> list[str]:
    """Load what matches from `uri` into `trunk`; returns the loaded keys. Shape mismatches are errors."""
    source = read_state_dict(uri)
    target = trunk.state_dict()
    loaded: dict[str, torch.Tensor] = {}
    for key, value in source.items():
        if key not in target:
            continue
        want = target[key]
        if key == "conv1.weight" and value.shape[1] < want.shape[1] and value.shape[0] == want.shape[0]:
            value = widen_first_conv(value, want)
        if value.shape != want.shape:
            raise ConfigError(
                f"backbone weights {uri!r}: {key} has shape {tuple(value.shape)}, model expects {tuple(want.shape)}"
            )
        loaded[key] = value
    if not any(k.startswith("layer3.") for k in loaded):
        raise ConfigError(f"backbone weights {uri!r}: no layer3 parameters match; is it a torchvision ResNet?")
    trunk.load_state_dict(loaded, strict=False)
    return sorted(loaded)
