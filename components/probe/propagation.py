"""Label propagation from key features alone (CRW's protocol, Jabri et al. 2020), with the model's similarity.

Each query frame reads the frames where masks were given and the previous `context_frames` frames:
the model's L2 affinity of every query cell to every context cell, over `temperature`; cells of
previous frames farther than `radius` cells from the query cell are left out (given frames are read
whole, as CRW reads its first frame); the `top_k` best per query cell are softmaxed and their soft
labels summed. No value encoder, no decoder: what comes out is only as good as the matching.

Objects that appear later join at the frame of their first mask and read only context frames from
there on, as `components.inference` does; where a given mask labels a pixel it replaces the
propagated labels. Labels live on the key grid (area-downsampled masks); the output is upsampled
bilinearly to full size, background = 1 - sum of objects, argmax.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from components.inference.frames import given_masks
from components.model import memory_read
from components.probe.config import ProbeConfig
from components.probe.keys import VideoKeys

BLOCK_ELEMENTS = 1 << 22  # affinity entries computed at once (16 MB in fp32)


def read_labels(
    query: torch.Tensor,
    keys: torch.Tensor,
    labels: torch.Tensor,
    restricted: torch.Tensor,
    config: ProbeConfig,
) -> torch.Tensor:
    """Soft labels of one query frame from its context.

    query: C,h,w; keys: T,C,h,w; labels: T,L,h,w; restricted: T bool (True: the radius applies to that
    frame)  ->  L,h,w. Every query cell has its own position in every frame to read, so it always has
    at least one finite affinity.
    """
    c, h, w = query.shape
    t, n_labels = keys.shape[0], labels.shape[1]
    hw = h * w
    q = query.reshape(c, hw).float()  # C, HW
    m = keys.permute(1, 0, 2, 3).reshape(c, t * hw).float()  # C, THW
    context_labels = labels.permute(0, 2, 3, 1).reshape(1, t * hw, n_labels).float()  # 1, THW, L
    far = None
    if config.radius is not None and bool(restricted.any()):
        far = outside_radius(h, w, config.radius, query.device)  # HW, HW
        restricted = restricted.to(query.device)[None, :, None]  # 1, T, 1
    out = q.new_empty(hw, n_labels)
    step = max(1, BLOCK_ELEMENTS // (t * hw))
    for start in range(0, hw, step):  # blocks of query cells bound the memory; each block is one matmul
        stop = min(start + step, hw)
        logits = memory_read.similarity(m[None], q[None, :, start:stop])[0] / config.temperature  # B, THW
        if far is not None:
            outside = far[start:stop, None, :] & restricted  # B, T, HW
            logits = logits.view(stop - start, t, hw).masked_fill(outside, float("-inf")).view(stop - start, -1)
        # -inf entries (fewer than K in reach) weigh 0
        out[start:stop] = memory_read.attend(logits[None], config.top_k).readout(context_labels)[0]
    return out.T.reshape(n_labels, h, w)


def outside_radius(h: int, w: int, radius: float, device: torch.device | str = "cpu") -> torch.Tensor:
    """HW,HW bool: cell pairs at Euclidean grid distance >= radius (CRW keeps d < radius)."""
    ys, xs = torch.meshgrid(torch.arange(h, device=device), torch.arange(w, device=device), indexing="ij")
    cells = torch.stack([ys.flatten(), xs.flatten()], dim=1).float()  # HW, 2
    return torch.cdist(cells, cells) >= radius


@dataclass
class _Context:
    """Soft labels of frames that may be read: given frames (kept) and the most recent others."""

    labels: dict[int, torch.Tensor] = field(default_factory=dict)  # frame -> O_then,h,w
    given: set[int] = field(default_factory=set)
    object_ids: list[int] = field(default_factory=list)
    join_frames: list[int] = field(default_factory=list)

    def add(self, index: int, labels: torch.Tensor, given: bool, keep_recent: int) -> None:
        self.labels[index] = labels
        if given:
            self.given.add(index)
        recent = sorted(i for i in self.labels if i not in self.given)
        for old in recent[: max(0, len(recent) - keep_recent)]:
            del self.labels[old]


def propagate_labels(
    video: VideoKeys, annotations: Mapping[int, np.ndarray], config: ProbeConfig
) -> Iterator[np.ndarray]:
    """One (H, W) id map per frame (0 background), propagated from `annotations` (frame -> id map, 255 void)."""
    if not annotations:
        raise ValueError("no annotated frame: propagation needs at least one given mask")
    keys, geometry = video.keys, video.geometry
    h, w = video.grid_size
    padded = (h * video.stride, w * video.stride)
    context = _Context()
    for index in range(keys.shape[0]):
        annotation = annotations.get(index)
        predicted = _predict(keys, index, context, config)  # O,h,w (O may be 0)
        if annotation is None and not context.object_ids:
            yield np.zeros((geometry.height, geometry.width), np.uint8)
            continue
        full = _upsample(predicted, padded)  # O,H',W'
        joined = False
        if annotation is not None:
            predicted, full, joined = _apply_annotation(index, annotation, predicted, full, video, context)
        if not context.object_ids:  # a given mask with no object in it
            yield np.zeros((geometry.height, geometry.width), np.uint8)
            continue
        context.add(index, predicted, joined, config.context_frames)
        yield _to_ids(full, video, context.object_ids)


def _predict(keys: torch.Tensor, index: int, context: _Context, config: ProbeConfig) -> torch.Tensor:
    """Soft labels of every known object at frame `index`, each object group reading from its join frame on."""
    h, w = keys.shape[-2:]
    out = keys.new_zeros(len(context.object_ids), h, w)
    for join in sorted(set(context.join_frames)):
        slots = [i for i, j in enumerate(context.join_frames) if j == join]
        frames = sorted(i for i in context.labels if i >= join)
        if not frames:
            continue
        labels = torch.stack([context.labels[i][slots] for i in frames])  # T,|slots|,h,w
        restricted = torch.tensor([i not in context.given for i in frames])
        out[slots] = read_labels(keys[index], keys[frames], labels, restricted, config)
    return out


def _apply_annotation(
    index: int, annotation: np.ndarray, predicted: torch.Tensor, full: torch.Tensor, video: VideoKeys, context: _Context
) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """Given masks replace predictions where they label a pixel (grid and full size); new ids join."""
    onehot, labelled, joined = given_masks(annotation, index, video.geometry, context.object_ids,
                                           context.join_frames, predicted.device)
    if not context.object_ids:
        return predicted, full, False
    onehot, labelled = onehot[0], labelled[0]  # O,H',W' and 1,H',W'
    onehot_grid = F.interpolate(onehot[None], size=video.grid_size, mode="area")[0]  # O,h,w
    labelled_grid = F.interpolate(labelled[None], size=video.grid_size, mode="area")[0]  # 1,h,w
    grown = torch.zeros_like(onehot_grid)
    grown[: predicted.shape[0]] = predicted
    grown_full = torch.zeros_like(onehot)
    grown_full[: full.shape[0]] = full
    predicted = grown * (1 - labelled_grid) + onehot_grid
    full = grown_full * (1 - labelled) + onehot
    return predicted, full, joined


def _upsample(labels: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """O,h,w grid labels -> O,H',W' (bilinear, half-pixel centres as cv2.resize; O may be 0)."""
    if labels.shape[0] == 0:
        return labels.new_zeros(0, *size)
    return F.interpolate(labels[None], size=size, mode="bilinear", align_corners=False)[0]


def _to_ids(full: torch.Tensor, video: VideoKeys, object_ids: list[int]) -> np.ndarray:
    """O,H',W' object probabilities on the padded grid -> (H, W) id map at the original size."""
    probs = video.geometry.probs_to_original(full[None])[0]  # O,H,W
    background = (1 - probs.sum(dim=0, keepdim=True)).clamp(min=0)
    slot = torch.cat([background, probs]).max(dim=0).indices
    wide = max(object_ids) > 255
    table = torch.tensor([0, *object_ids], dtype=torch.int32 if wide else torch.uint8, device=slot.device)
    labels = table[slot].cpu().numpy()
    return labels.astype(np.uint16) if wide else labels
