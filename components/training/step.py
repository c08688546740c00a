"""One optimisation step: forward over both views, the loss dict, backward, optional clipping, update.

No official code (STCN, XMem, VOS_Correspondence) clips gradients; `grad_clip` is an opt-in departure.
"""

from __future__ import annotations

import torch
from torch import nn

from components.config.schema import LossConfig
from components.losses import compute_losses
from components.precision import autocast_for
from components.training.batch import ClipBatch
from components.training.guard import check_finite


def training_step(
    model: nn.Module,
    batch: ClipBatch,
    loss_config: LossConfig,
    progress: float,
    optimizer: torch.optim.Optimizer,
    *,
    step: int,
    precision: str = "auto",
    grad_clip: float | None = None,
    generator: torch.Generator | None = None,
) -> tuple[dict[str, float], dict[str, torch.Tensor]]:
    """Run one step; returns (loss terms and grad norm as floats, the model outputs for previews).

    `step` is the stage's 0-based iteration (the schedules' position in iterations); `grad_clip` None
    or 0 leaves gradients unclipped, as every official trainer does; the norm is logged either way.

    Raises `NonFiniteLossError` before the update when any term is NaN or infinite, so the
    weights stay those of the last good step.
    """
    device = batch.frames.device
    with autocast_for(device, precision):
        outputs = model(batch, with_correspondence=loss_config.uses_correspondence, generator=generator)
    terms = compute_losses(outputs, batch, loss_config, progress, generator, iteration=step)
    values = check_finite(terms, step)
    optimizer.zero_grad(set_to_none=True)
    terms["total"].backward()
    params = [p for p in model.parameters() if p.grad is not None]
    norm = torch.nn.utils.clip_grad_norm_(params, grad_clip if grad_clip else float("inf"))
    values["grad_norm"] = float(norm)
    if not torch.isfinite(norm):
        optimizer.zero_grad(set_to_none=True)
        check_finite({"grad_norm": norm}, step)
    optimizer.step()
    return values, outputs
