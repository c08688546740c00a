"""STCN's similarity and the grid sampling shared by the correspondence losses."""

from __future__ import annotations

import math

import torch


def l2_similarity(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """sim(a, b) = -||a - b||^2 / sqrt(C) for every pair.  a: ..., N, C;  b: ..., M, C  ->  ..., N, M."""
    c = a.shape[-1]
    a_sq = a.pow(2).sum(dim=-1, keepdim=True)  # ..., N, 1
    b_sq = b.pow(2).sum(dim=-1).unsqueeze(-2)  # ..., 1, M
    return (2 * a @ b.transpose(-1, -2) - a_sq - b_sq) / math.sqrt(c)


def grid_positions(
    batch_size: int, height: int, width: int, grid: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Flat indices of a grid x grid lattice per clip, stride = size // grid, one random offset per clip.

    On the released 24x24 maps this is stride 3 with offsets {0,1,2} for the 8x8 anchors and stride 6
    with offsets {0..5} for the 4x4 cross-view points. Maps smaller than the grid use every cell.
    Returns B, G_h * G_w (int64, CPU).
    """
    axes = []
    for size in (height, width):
        points = min(grid, size)
        stride = size // points
        max_offset = size - (points - 1) * stride - 1
        offset = torch.randint(0, max_offset + 1, (batch_size, 1), generator=generator)
        axes.append(offset + stride * torch.arange(points)[None, :])  # B, points
    ys, xs = axes
    return (ys[:, :, None] * width + xs[:, None, :]).flatten(1)


def gather_positions(maps: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Pick feature vectors at flat positions.  maps: B, C, h, w;  positions: B, K  ->  B, K, C."""
    flat = maps.flatten(2)  # B, C, hw
    index = positions.to(maps.device)[:, None, :].expand(-1, flat.shape[1], -1)
    return flat.gather(2, index).transpose(1, 2)
