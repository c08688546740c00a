"""View B of a clip (one shared flip + zoom-in crop, resized back) and the affine theta linking it to view A.

theta (B, 2, 3) maps normalised [-1, 1] coordinates of view B to those of view A, the convention of
`F.affine_grid`: view B is `grid_sample(view A, affine_grid(theta))`, and any view-A map (features,
logits) is brought onto view B's grid the same way with nearest sampling (`warp_to_view_b`).
Building view B on the device from the batch keeps loaders simple and makes theta exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class ViewB:
    frames: torch.Tensor  # B, T, 3, H, W
    theta: torch.Tensor  # B, 2, 3  view-B coords -> view-A coords


def view_b_theta(scale: torch.Tensor, flip: torch.Tensor, centre: torch.Tensor) -> torch.Tensor:
    """theta for a crop of relative size `scale` (B,) centred at `centre` (B, 2: x, y), flipped where `flip` (B,)."""
    sign = 1.0 - 2.0 * flip.float()
    theta = torch.zeros(scale.shape[0], 2, 3, dtype=torch.float32)
    theta[:, 0, 0] = sign * scale
    theta[:, 1, 1] = scale
    theta[:, 0, 2] = centre[:, 0]
    theta[:, 1, 2] = centre[:, 1]
    return theta


def sample_view_b_theta(
    batch_size: int,
    min_scale: float = 0.5,
    flip_p: float = 0.5,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Draw one flip (p = flip_p) and one zoom crop (scale U[min_scale, 1], uniform position) per clip."""
    scale = min_scale + (1.0 - min_scale) * torch.rand(batch_size, generator=generator)
    flip = torch.rand(batch_size, generator=generator) < flip_p
    centre = (torch.rand(batch_size, 2, generator=generator) * 2 - 1) * (1 - scale)[:, None]
    return view_b_theta(scale, flip, centre)


def apply_theta(images: torch.Tensor, theta: torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
    """Resample images (N, C, H, W) of view A onto view B's grid; theta is (N, 2, 3)."""
    grid = F.affine_grid(theta.to(device=images.device, dtype=images.dtype), list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode=mode, padding_mode="border", align_corners=False)


def warp_to_view_b(maps: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Nearest-neighbour resampling of view-A maps (N, C, h, w) onto view B's grid."""
    return apply_theta(maps, theta, mode="nearest")


def make_view_b(frames: torch.Tensor, theta: torch.Tensor) -> ViewB:
    """View B of clips (B, T, 3, H, W): the same theta for every frame of a clip."""
    b, t = frames.shape[:2]
    flat = apply_theta(frames.flatten(0, 1), theta.repeat_interleave(t, dim=0))
    return ViewB(frames=flat.view_as(frames), theta=theta.to(frames.device))
