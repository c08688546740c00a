"""Deterministic inputs for the loss parity fixtures (tools/parity/record_losses.py and the tests).

The fixture stores only what the official functions returned (values, gradients, sampled grid
indices); the inputs are rebuilt here from numpy's PCG64 stream, so the recorder (with the official
code) and the tests (without it) see identical tensors. Shapes are small so the file stays small.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

FIXTURE = Path(__file__).parent / "fixtures" / "official_losses.npz"

# correspondence: B clips of T frames, K-channel keys on an HxW grid (16 = 8 anchors x stride 2, 4 points x stride 4)
CORR_B, CORR_T, CORR_K, CORR_HW = 2, 3, 4, 16
# embedding scales: 0.5 keeps every probability far above 1e-8; at 4 some targets fall below it (the
# clipped log saturates); at 10 every own-clip probability of some pixels underflows (released pseudo-label)
CORR_SCALES = (0.5, 4.0, 10.0)

# segmentation: B clips, T frames (frames 1.. are predicted), HxW pixels
SEG_B, SEG_T, SEG_HW = 3, 3, 12
STCN_OBJECTS = (2, 1, 2)  # objects per clip, at most 2 (STCN); clip 1 has no second object
XMEM_OBJECTS = (3, 1, 2)  # at most 3 (XMem)
# iterations at which the segmentation losses are recorded: plain CE, mid-anneal, top 15%
SEG_ITERATIONS = (10_000, 45_000, 100_000)
# iterations at which the released ramp and bootstrap fraction are recorded
SCHEDULE_ITERATIONS = (0, 19_999, 20_000, 20_001, 29_999, 30_000, 45_000, 60_000, 69_999, 70_000, 70_001,
                       89_999, 90_000, 125_000, 299_999)


def view_theta() -> torch.Tensor:
    """theta (B, 2, 3) per clip, view B -> view A: clip 0 flipped and zoomed 0.75, clip 1 zoomed 0.6."""
    return torch.tensor([[[-0.75, 0.0, 0.1], [0.0, 0.75, -0.2]],
                         [[0.6, 0.0, -0.3], [0.0, 0.6, 0.25]]], dtype=torch.float32)


def correspondence_keys(scale: float, seed: int = 21) -> tuple[torch.Tensor, torch.Tensor]:
    """(view A keys, view B keys), each B,T,K,H,W: view B is view A cropped by theta plus noise."""
    rng = np.random.default_rng(seed)
    shape = (CORR_B, CORR_T, CORR_K, CORR_HW, CORR_HW)
    keys_a = torch.from_numpy(rng.standard_normal(shape).astype(np.float32)) * scale
    noise = torch.from_numpy(rng.standard_normal(shape).astype(np.float32)) * (0.5 * scale)
    theta = view_theta().repeat_interleave(CORR_T, dim=0)
    flat = keys_a.flatten(0, 1)
    grid = F.affine_grid(theta, list(flat.shape), align_corners=False)
    warped = F.grid_sample(flat, grid, mode="nearest", align_corners=False).view(shape)
    return keys_a, warped + noise


def segmentation_case(objects: tuple[int, ...], max_objects: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits B,T-1,O+1,H,W, labels B,T,H,W int64) with clip b's labels in 0..objects[b]."""
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((SEG_B, SEG_T - 1, max_objects + 1, SEG_HW, SEG_HW)).astype(np.float32) * 2
    labels = np.stack([rng.integers(0, n + 1, (SEG_T, SEG_HW, SEG_HW)) for n in objects])
    return torch.from_numpy(logits), torch.from_numpy(labels.astype(np.int64))


def masks_and_selector(labels: torch.Tensor, objects: tuple[int, ...], max_objects: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Binary masks B,T,O,H,W and selector B,O (leading slots filled) for index labels B,T,H,W."""
    slots = torch.arange(1, max_objects + 1)
    masks = (labels[:, :, None] == slots[None, None, :, None, None]).float()
    selector = (torch.arange(max_objects)[None, :] < torch.tensor(objects)[:, None]).float()
    return masks, selector
