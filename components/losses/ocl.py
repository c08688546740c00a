"""Object-level coherence (OCL), as the poster states it; the released code has no such term.

Each object in each frame is summarised by the mask-weighted mean of its head-g embedding (labels
downsampled to the key grid by area). A query is an object in a frame t >= 1; its positive is the same
object in frame 0 of its clip; the negatives are every other object and the background region of
every clip in the batch at frame 0. Loss = mean over queries of -log softmax(sim)[positive].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from components.losses.similarity import l2_similarity

MIN_AREA = 1e-3  # a region smaller than this many key-grid cells has no prototype


def region_prototypes(embeddings: torch.Tensor, masks: torch.Tensor, selector: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mask-weighted mean embeddings of {background, objects} per clip and frame.

    embeddings: B,T,D,h,w; masks: B,T,O,H,W; selector: B,O.
    Returns prototypes B,T,O+1,D (slot 0 = background) and validity B,T,O+1 (bool).
    """
    b, t, d, h, w = embeddings.shape
    o = masks.shape[2]
    objects = F.adaptive_avg_pool2d(masks.flatten(0, 1).float(), (h, w)).view(b, t, o, h, w)
    objects = objects * selector[:, None, :, None, None].float()
    background = (1 - objects.sum(dim=2, keepdim=True)).clamp(min=0)
    regions = torch.cat([background, objects], dim=2)  # B, T, O+1, h, w
    area = regions.flatten(3).sum(-1)  # B, T, O+1
    weighted = torch.einsum("btrp,btdp->btrd", regions.flatten(3), embeddings.flatten(3))
    prototypes = weighted / area.clamp(min=MIN_AREA)[..., None]
    return prototypes, area > MIN_AREA


def ocl_loss(embeddings: torch.Tensor, masks: torch.Tensor, selector: torch.Tensor) -> torch.Tensor:
    """embeddings: B,T,D,h,w (view A, with gradient); masks: B,T,O,H,W; selector: B,O."""
    b, t, d = embeddings.shape[:3]
    o = masks.shape[2]
    prototypes, valid = region_prototypes(embeddings, masks, selector)
    candidates = prototypes[:, 0].reshape(b * (o + 1), d)  # frame-0 regions of every clip
    candidate_ok = valid[:, 0].reshape(-1)
    queries = prototypes[:, 1:, 1:].reshape(-1, d)  # objects at t >= 1: B*(T-1)*O
    query_ok = (valid[:, 1:, 1:] & valid[:, None, 0, 1:]).reshape(-1)
    target = (torch.arange(b, device=embeddings.device)[:, None, None] * (o + 1) + 1 + torch.arange(o, device=embeddings.device))
    target = target.expand(b, t - 1, o).reshape(-1)
    if not bool(query_ok.any()):
        return embeddings.sum() * 0.0  # no object visible in two frames: a zero that keeps the graph
    logits = l2_similarity(queries[query_ok], candidates)
    logits = logits.masked_fill(~candidate_ok[None, :], float("-inf"))
    return F.cross_entropy(logits, target[query_ok])
