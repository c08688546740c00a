"""The mask loss: STCN/XMem's bootstrapped cross-entropy and the two released Dice terms.

Official form (STCN, XMem, VOS_Correspondence `model/losses.py`): every clip is its own problem. Its
classes are background plus the objects it holds (a clip without a second object is a two-class
problem), its cross-entropy keeps its own hardest `p` of pixels, and the clip losses are averaged.
`per_clip=False` is corrvos's earlier departure: the top-p over the whole batch's pixels and every class
slot, absent objects included (`loss.bootstrap_scope: batch`).

Dice: `released` is VOS_Correspondence's `DiceLoss` (softmax over the clip's classes, background
included, smooth 1, 1e-8 in the denominator, averaged over those classes); `xmem` is XMem's `dice_loss`
(the objects' aggregated probabilities only, every object slot, smooth 1, averaged over clips x slots).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

DiceForm = Literal["released", "xmem"]
DICE_EPS = 1e-8  # VOS_Correspondence's DiceLoss adds it to the denominator


def clip_classes(selector: torch.Tensor) -> torch.Tensor:
    """Classes each clip can take: background and the object slots its selector marks.  B,O -> B,O+1 bool."""
    background = torch.ones_like(selector[:, :1], dtype=torch.bool)
    return torch.cat([background, selector > 0.5], dim=1)


def _restrict(logits: torch.Tensor, classes: torch.Tensor | None) -> torch.Tensor:
    """Logits with the classes a clip cannot take set to -inf: the softmax of the clip's own classes."""
    if classes is None:
        return logits
    return logits.masked_fill(~classes[:, :, None, None], float("-inf"))


def bootstrapped_cross_entropy(
    logits: torch.Tensor,
    labels: torch.Tensor,
    keep_fraction: float,
    classes: torch.Tensor | None = None,
    per_clip: bool = True,
) -> torch.Tensor:
    """Mean over clips of each clip's mean CE over its hardest `keep_fraction` pixels (STCN/XMem).

    logits: N,C,H,W; labels: N,H,W; classes: N,C bool (None: every class). `per_clip=False`: one top-k
    over all N*H*W pixels instead (not official).
    """
    raw = F.cross_entropy(_restrict(logits, classes), labels, reduction="none")  # N, H, W
    if keep_fraction >= 1.0:
        return raw.mean()
    rows = raw.flatten(1) if per_clip else raw.reshape(1, -1)
    keep = max(int(rows.shape[1] * keep_fraction), 1)
    return torch.topk(rows, keep, dim=1, sorted=False).values.mean()


def dice_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    classes: torch.Tensor | None = None,
    form: DiceForm = "released",
    smooth: float = 1.0,
) -> torch.Tensor:
    """1 - Dice in the released (`released`, background included) or XMem (`xmem`, objects only) form.

    logits: N,C,H,W over {background, objects}; labels: N,H,W; classes: N,C bool (None: every class).
    """
    if form == "xmem":
        probs = torch.softmax(logits, dim=1)[:, 1:]  # N, O: the aggregated object probabilities, every slot
        target = (labels[:, None] == torch.arange(1, logits.shape[1], device=labels.device)[None, :, None, None])
        eps, weight = 0.0, None
    elif form == "released":
        probs = torch.softmax(_restrict(logits, classes), dim=1)  # N, C
        target = F.one_hot(labels, num_classes=logits.shape[1]).permute(0, 3, 1, 2)
        eps, weight = DICE_EPS, None if classes is None else classes.to(probs.dtype)
    else:
        raise ValueError(f"unknown dice form {form!r}")
    target = target.to(probs.dtype)
    intersection = (probs * target).flatten(2).sum(-1)
    total = probs.flatten(2).sum(-1) + target.flatten(2).sum(-1)
    loss = 1 - (2 * intersection + smooth) / (total + smooth + eps)  # N, classes
    if weight is None:
        return loss.mean()
    return ((loss * weight).sum(1) / weight.sum(1)).mean()
