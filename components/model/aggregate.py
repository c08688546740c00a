"""Soft aggregation (STCN): turn per-object probabilities into logits over {background, objects}."""

from __future__ import annotations

import torch


def soft_aggregate(object_probs: torch.Tensor) -> torch.Tensor:
    """object_probs: B, O, H, W in [0, 1]  ->  logits B, O+1, H, W whose softmax sums to one.

    Background is the probability that no object claims the pixel, prod(1 - p_o); each class
    probability is clamped and turned into a logit, so objects compete through the softmax.
    """
    background = torch.prod(1 - object_probs, dim=1, keepdim=True)
    probs = torch.cat([background, object_probs], dim=1).clamp(1e-7, 1 - 1e-7)
    return torch.log(probs / (1 - probs))
