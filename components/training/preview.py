"""A picture of training: for a few clips, frames with ground truth and predictions drawn by the overlay renderer."""

from __future__ import annotations

import numpy as np
import torch

from components.evaluation.overlays import draw_masks
from components.training.batch import ClipBatch


def prediction_grid(batch: ClipBatch, logits: torch.Tensor, max_clips: int = 4) -> np.ndarray:
    """Rows = clips; columns = frames with ground truth, then frames 1.. with predictions. Returns H,W,3 uint8."""
    frames = (batch.frames[:max_clips].detach().float().clamp(0, 1) * 255).byte().permute(0, 1, 3, 4, 2).contiguous().cpu().numpy()
    truth = batch.labels()[:max_clips].cpu().numpy()
    predicted = logits[:max_clips].detach().float().argmax(dim=2).cpu().numpy()  # B, T-1, H, W
    rows = []
    for b in range(frames.shape[0]):
        tiles = [draw_masks(frames[b, t], truth[b, t]) for t in range(frames.shape[1])]
        tiles += [draw_masks(frames[b, t + 1], predicted[b, t]) for t in range(predicted.shape[1])]
        rows.append(np.concatenate(tiles, axis=1))
    return np.concatenate(rows, axis=0)
