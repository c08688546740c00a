"""The pixel-level correspondence terms of the released code (METHOD_REFERENCE §2.1, §2.2).

`pcl`: every key-grid pixel (stride 16, or 8) of query frames t >= 1 (view A, warped to view B's grid) is classified
among the 8x8 grid anchors of frame 0 of every clip in the batch; its target is the nearest
own-clip anchor of the same pixel in view B (hard label, no gradient).
`cross_view`: InfoNCE between 4x4 grid points of frame 0 in view A (warped) and the same points
in view B; negatives are all other points of the batch.

As released (`model/model.py`, `_ce_loss`, `_ref_loss`, `_pseudo_mask`), both terms take a clipped log,
`-log(softmax + 1e-8)`: once a target's probability falls below 1e-8 the pixel's loss saturates at
18.4 and stops giving gradient. `log_form="exact"` is plain cross-entropy (a departure, not released).
The released pseudo-label is the argmax of the softmax over *all* clips' anchors masked to the own
clip's: where every own-clip probability underflows to 0 it is index 0, clip 0's first anchor.
`pseudo_label="own_clip"` takes the argmax of the own-clip similarities instead (a departure).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

from components.losses.similarity import gather_positions, grid_positions, l2_similarity
from components.model.views import warp_to_view_b

LogForm = Literal["clipped", "exact"]
PseudoLabel = Literal["released", "own_clip"]
LOG_EPS = 1e-8  # the released code's `torch.log(softmax + eps)`


def _softmax(logits: torch.Tensor) -> torch.Tensor:
    """Softmax over dim 1 written as the released `stcn_softmax` (exp of logits minus max, over the sum)."""
    e = torch.exp(logits - logits.amax(dim=1, keepdim=True))
    return e / e.sum(dim=1, keepdim=True)


def contrastive_nll(logits: torch.Tensor, targets: torch.Tensor, log_form: LogForm = "clipped") -> torch.Tensor:
    """Mean -log p(target) over dim 1: released `-log(softmax + 1e-8)` (`clipped`) or exact CE (`exact`)."""
    if log_form == "exact":
        return F.cross_entropy(logits, targets)
    if log_form != "clipped":
        raise ValueError(f"unknown log form {log_form!r}")
    return F.nll_loss(torch.log(_softmax(logits) + LOG_EPS), targets)


def pcl_loss(
    embed_a: torch.Tensor,
    embed_b: torch.Tensor,
    theta: torch.Tensor,
    anchor_grid: int = 8,
    generator: torch.Generator | None = None,
    anchor_positions: torch.Tensor | None = None,
    log_form: LogForm = "clipped",
    pseudo_label: PseudoLabel = "released",
) -> torch.Tensor:
    """Released `stloss`.  embed_a, embed_b: B,T,D,h,w (view B frames >= 1 may be detached); theta: B,2,3."""
    b, t, d, h, w = embed_a.shape
    if anchor_positions is None:
        anchor_positions = grid_positions(b, h, w, anchor_grid, generator)
    anchors = gather_positions(embed_a[:, 0], anchor_positions).reshape(-1, d)  # B*K, D (with gradient)
    logits_a = _anchor_logit_maps(embed_a[:, 1:], anchors)  # B*(T-1), B*K, h, w
    logits_a = warp_to_view_b(logits_a, theta.repeat_interleave(t - 1, dim=0))
    targets = pseudo_labels(embed_b[:, 1:], anchors, pseudo_label)  # B*(T-1), h, w
    return contrastive_nll(logits_a, targets, log_form)


@torch.no_grad()
def pseudo_labels(embed_b: torch.Tensor, anchors: torch.Tensor, rule: PseudoLabel = "released") -> torch.Tensor:
    """The anchor each view-B pixel is matched to (no gradient).  embed_b: B,T',D,h,w; anchors: B*K,D -> B*T',h,w.

    `released`: argmax of the softmax over every clip's anchors, zeroed outside the pixel's own clip;
    `own_clip`: argmax of the own clip's similarities.
    """
    b, t = embed_b.shape[:2]
    k = anchors.shape[0] // b
    logits_b = _anchor_logit_maps(embed_b.detach(), anchors.detach())  # B*T', B*K, h, w
    clip_of_pixel = torch.arange(b, device=anchors.device).repeat_interleave(t)  # B*T'
    clip_of_anchor = torch.arange(b, device=anchors.device).repeat_interleave(k)  # B*K
    own = (clip_of_pixel[:, None] == clip_of_anchor[None, :])[:, :, None, None]  # B*T', B*K, 1, 1
    if rule == "released":
        scores = _softmax(logits_b) * own
    elif rule == "own_clip":
        scores = logits_b.masked_fill(~own, float("-inf"))
    else:
        raise ValueError(f"unknown pseudo-label rule {rule!r}")
    return scores.max(dim=1).indices  # first maximum, as argmax (vectorised on CPU for dim 1)


def _anchor_logit_maps(embeddings: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
    """Similarity of every pixel to every anchor as maps.  embeddings: B,T',D,h,w -> B*T', N, h, w."""
    b, t, d, h, w = embeddings.shape
    pixels = embeddings.permute(0, 1, 3, 4, 2).reshape(b * t, h * w, d)
    logits = l2_similarity(pixels, anchors)  # B*T', hw, N
    return logits.transpose(1, 2).reshape(b * t, anchors.shape[0], h, w)


def cross_view_loss(
    embed_a0: torch.Tensor,
    embed_b0: torch.Tensor,
    theta: torch.Tensor,
    point_grid: int = 4,
    generator: torch.Generator | None = None,
    positions: torch.Tensor | None = None,
    log_form: LogForm = "clipped",
) -> torch.Tensor:
    """Released `cvloss`.  embed_a0, embed_b0: B,D,h,w (frame 0 of each view, both with gradient); theta: B,2,3."""
    b, d, h, w = embed_a0.shape
    warped = warp_to_view_b(embed_a0, theta)
    if positions is None:
        positions = grid_positions(b, h, w, point_grid, generator)
    queries = gather_positions(warped, positions).reshape(-1, d)  # M, D
    keys = gather_positions(embed_b0, positions).reshape(-1, d)  # M, D
    logits = l2_similarity(queries, keys)  # M, M
    return contrastive_nll(logits, torch.arange(logits.shape[0], device=logits.device), log_form)
