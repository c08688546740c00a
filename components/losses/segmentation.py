"""The mask loss: STCN's bootstrapped cross-entropy and an optional Dice term."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def bootstrapped_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, keep_fraction: float) -> torch.Tensor:
    """Mean CE over the hardest `keep_fraction` of all pixels in the batch.  logits: N,C,H,W; labels: N,H,W."""
    raw = F.cross_entropy(logits, labels, reduction="none").flatten()
    if keep_fraction >= 1.0:
        return raw.mean()
    keep = max(int(raw.numel() * keep_fraction), 1)
    return torch.topk(raw, keep, sorted=False).values.mean()


def dice_loss(logits: torch.Tensor, labels: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    """1 - Dice per class (background included, smooth 1), averaged over classes and samples."""
    probs = torch.softmax(logits, dim=1)  # N, C, H, W
    target = F.one_hot(labels, num_classes=logits.shape[1]).permute(0, 3, 1, 2).to(probs.dtype)
    intersection = (probs * target).flatten(2).sum(-1)
    total = probs.flatten(2).sum(-1) + target.flatten(2).sum(-1)
    dice = (2 * intersection + smooth) / (total + smooth)
    return (1 - dice).mean()
