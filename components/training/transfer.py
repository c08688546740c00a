"""Start a stage from an earlier stage's inference weights.

Static pretraining has one object per pseudo-video, so its value encoder sees RGB + mask (4
channels); main training adds the "other objects" channel, orthogonally initialised, as STCN does.
"""

from __future__ import annotations

import torch
from torch import nn

from components.model.weights import add_input_channels

VALUE_CONV1 = "value_encoder.trunk.conv1.weight"


def load_stage_weights(model: nn.Module, state_dict: dict[str, torch.Tensor]) -> list[str]:
    """Load `state_dict` into `model` (head g may be absent); widens the value encoder's first conv if needed.

    Returns the keys of `model` that were not in `state_dict` (head g when coming from inference weights).
    """
    state = dict(state_dict)
    target = model.state_dict()
    if VALUE_CONV1 in state and VALUE_CONV1 in target:
        have, want = state[VALUE_CONV1].shape[1], target[VALUE_CONV1].shape[1]
        if have < want:
            state[VALUE_CONV1] = add_input_channels(state[VALUE_CONV1], want - have)
        elif have > want:
            raise ValueError(f"{VALUE_CONV1}: checkpoint has {have} input channels, the model takes {want}")
    result = model.load_state_dict(state, strict=False)
    if result.unexpected_keys:
        raise ValueError(f"checkpoint holds keys the model does not have: {result.unexpected_keys[:3]}")
    return list(result.missing_keys)
