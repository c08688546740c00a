"""Optimiser, parameter groups and the learning-rate schedule of a training stage.

The layer-wise groups are the correspondence repo's (METHOD_REFERENCE §4.1): encoder stems, the
key encoder's layer1 and the value encoder's fusion block at 0.2x, encoder layer2/layer3 at 0.4x,
the rest (key projection, head g, decoder) at 1x. Groups are chosen by parameter-name pattern.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_right
from collections.abc import Sequence

import torch
from torch import nn

LAYERWISE_RULES: tuple[tuple[str, float], ...] = (
    (r"^(key_encoder|value_encoder\.trunk)\.(layer2|layer3)\.", 0.4),
    (r"^(key_encoder|value_encoder\.trunk)\.", 0.2),
    (r"^value_encoder\.fusion\.", 0.2),
)


def lr_multiplier(name: str, layerwise: bool) -> float:
    """The multiplier of the base learning rate for parameter `name` (first matching rule wins)."""
    if layerwise:
        for pattern, multiplier in LAYERWISE_RULES:
            if re.match(pattern, name):
                return multiplier
    return 1.0


def parameter_groups(model: nn.Module, base_lr: float, layerwise: bool) -> list[dict]:
    """One optimiser group per distinct multiplier; each group remembers its multiplier."""
    groups: dict[float, list[torch.nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if param.requires_grad:
            groups.setdefault(lr_multiplier(_strip_wrappers(name), layerwise), []).append(param)
    return [{"params": params, "lr": base_lr * m, "lr_multiplier": m} for m, params in sorted(groups.items())]


def build_optimizer(model: nn.Module, kind: str, base_lr: float, weight_decay: float, layerwise: bool) -> torch.optim.Optimizer:
    groups = parameter_groups(model, base_lr, layerwise)
    if kind == "adamw":
        return torch.optim.AdamW(groups, lr=base_lr, weight_decay=weight_decay)
    if kind == "adam":
        return torch.optim.Adam(groups, lr=base_lr, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {kind!r}")


def learning_rate_at(step: int, iterations: int, base_lr: float, drop_steps: Sequence[int], gamma: float,
                     schedule: str = "step") -> float:
    """The lr at 0-based iteration `step` of a stage of `iterations`.

    `step`: base_lr * gamma ** (drops at or before `step`), the recipes' MultiStepLR stepped once per iteration
    (milestone 125000: iterations 0..124999 at base_lr). `cosine`: a half cosine over the stage from base_lr
    down to base_lr * gamma ** len(drop_steps), the step schedule's end point.
    """
    if schedule == "cosine":
        floor = base_lr * gamma ** len(drop_steps)
        progress = min(max(step / iterations, 0.0), 1.0)
        return floor + (base_lr - floor) * 0.5 * (1 + math.cos(math.pi * progress))
    if schedule != "step":
        raise ValueError(f"unknown lr schedule {schedule!r}")
    return base_lr * gamma ** bisect_right(sorted(drop_steps), step)


def set_learning_rate(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_multiplier", 1.0)


def _strip_wrappers(name: str) -> str:
    """DDP and torch.compile prefix parameter names; the rules match the bare model's names."""
    for prefix in ("module.", "_orig_mod."):
        while name.startswith(prefix):
            name = name[len(prefix):]
    return name
