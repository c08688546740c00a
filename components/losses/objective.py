"""The training objective: a dict of named loss terms, their weights from config, and the total.

total = seg_weight * seg + dice_weight * dice + lambda(position) * (w_pcl * pcl + w_cv * cross_view + w_ocl * ocl)

`seg` and `dice` are summed over the predicted frames of the mean over clips, as STCN, XMem and the
released code sum them; the position is the stage's 0-based iteration or its fraction done
(`loss.schedule_unit`). A term whose weight is zero is not computed and not in the dict. Everything
here runs in fp32 with autocast disabled; the correspondence terms are unstable in half precision
(released code, issue #2).
"""

from __future__ import annotations

import torch

from components.config.schema import LossConfig
from components.losses.correspondence import cross_view_loss, pcl_loss
from components.losses.ocl import ocl_loss
from components.losses.schedule import bootstrap_fraction, correspondence_ramp, schedule_position
from components.losses.segmentation import bootstrapped_cross_entropy, clip_classes, dice_loss
from components.training.batch import ClipBatch

CORRESPONDENCE_TERMS = ("pcl", "cross_view", "ocl")


def compute_losses(
    outputs: dict[str, torch.Tensor],
    batch: ClipBatch,
    config: LossConfig,
    progress: float,
    generator: torch.Generator | None = None,
    iteration: int | None = None,
) -> dict[str, torch.Tensor]:
    """Every term, `lambda`, `bootstrap_p` and `total` as tensors.

    `progress`: the stage fraction done; `iteration`: the stage's 0-based iteration, needed when the
    schedules are in iterations (the released form).
    """
    device = outputs["logits"].device
    position = schedule_position(config.schedule_unit, progress, iteration)
    with torch.autocast(device_type=device.type, enabled=False):
        terms = _segmentation_terms(outputs["logits"].float(), batch, config, position)
        terms.update(_correspondence_terms(outputs, batch, config, generator))
        lam = correspondence_ramp(position, config.ramp_start, config.ramp_end)
        total = config.seg_weight * terms["seg"]
        if "dice" in terms:
            total = total + config.dice_weight * terms["dice"]
        for name in CORRESPONDENCE_TERMS:
            if name in terms:
                total = total + lam * getattr(config, f"{name}_weight") * terms[name]
        terms["lambda"] = torch.tensor(lam, device=device)
        terms["total"] = total
    return terms


def _segmentation_terms(
    logits: torch.Tensor, batch: ClipBatch, config: LossConfig, position: float
) -> dict[str, torch.Tensor]:
    """Bootstrapped CE (and Dice) per predicted frame, each a mean over clips, summed over frames."""
    labels = batch.labels()[:, 1:]  # B, T-1, H, W
    keep = bootstrap_fraction(position, config.bootstrap_start, config.bootstrap_end, config.bootstrap_top_p)
    per_clip = config.bootstrap_scope == "clip"
    classes = clip_classes(batch.selector.to(logits.device))  # B, O+1
    ce_classes = classes if per_clip else None
    frames = range(logits.shape[1])
    terms = {"seg": sum(bootstrapped_cross_entropy(logits[:, i], labels[:, i], keep, ce_classes, per_clip)
                        for i in frames)}
    if config.dice_weight > 0:
        terms["dice"] = sum(dice_loss(logits[:, i], labels[:, i], classes, config.dice_form) for i in frames)
    terms["bootstrap_p"] = torch.tensor(keep, device=logits.device)
    return terms


def _correspondence_terms(
    outputs: dict[str, torch.Tensor], batch: ClipBatch, config: LossConfig, generator: torch.Generator | None
) -> dict[str, torch.Tensor]:
    """pcl, cross_view and ocl for the terms whose weight is non-zero."""
    if not config.uses_correspondence:
        return {}
    if "embed_a" not in outputs:
        raise ValueError("loss weights ask for correspondence terms but the model ran without them")
    embed_a, embed_b, theta = outputs["embed_a"].float(), outputs["embed_b"].float(), outputs["theta"].float()
    terms: dict[str, torch.Tensor] = {}
    if config.pcl_weight > 0:
        terms["pcl"] = pcl_loss(embed_a, embed_b, theta, config.anchor_grid, generator,
                                log_form=config.correspondence_log, pseudo_label=config.pseudo_label)
    if config.cross_view_weight > 0:
        terms["cross_view"] = cross_view_loss(embed_a[:, 0], embed_b[:, 0], theta, config.cross_view_grid, generator,
                                              log_form=config.correspondence_log)
    if config.ocl_weight > 0:
        terms["ocl"] = ocl_loss(embed_a, batch.masks, batch.selector)
    return terms
