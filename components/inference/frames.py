"""Frame geometry for inference: optional resizing of the short side into a range, padding to a multiple of 16.

Padding is `replicate` (edge pixels repeated; corrvos's default) or `zero`: zeros in the
ImageNet-normalised frame, as the official STCN/XMem evaluation pads. The network normalises inside,
so `zero` pads the [0, 1] frame with the ImageNet mean, which normalises to exactly 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from components.model.encoders import IMAGENET_MEAN


@dataclass(frozen=True)
class FrameGeometry:
    """How a video's frames map to the network's grid and back."""

    height: int  # original
    width: int
    inner_height: int  # after resizing the short side into [min_short_side, max_short_side], before padding
    inner_width: int
    pad: tuple[int, int, int, int]  # left, right, top, bottom
    padding: str = "replicate"  # or "zero": zero after ImageNet normalisation (official)

    @classmethod
    def for_size(cls, height: int, width: int, max_short_side: int | None = None, multiple: int = 16,
                 min_short_side: int | None = None, padding: str = "replicate") -> "FrameGeometry":
        """Down-scale a short side above `max_short_side`, up-scale one below `min_short_side` (a finer
        stride-16 key grid on small videos), then pad to a multiple of `multiple`."""
        if padding not in ("replicate", "zero"):
            raise ValueError(f"padding must be 'replicate' or 'zero', got {padding!r}")
        if max_short_side is not None and min_short_side is not None and min_short_side > max_short_side:
            raise ValueError(f"min_short_side {min_short_side} is above max_short_side {max_short_side}")
        short, scale = min(height, width), 1.0
        if max_short_side is not None and short > max_short_side:
            scale = max_short_side / short
        elif min_short_side is not None and short < min_short_side:
            scale = min_short_side / short
        inner_h, inner_w = max(round(height * scale), 1), max(round(width * scale), 1)
        pad_h, pad_w = (-inner_h) % multiple, (-inner_w) % multiple
        pad = (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2)
        return cls(height, width, inner_h, inner_w, pad, padding)

    def frame_to_tensor(self, frame: np.ndarray, device: torch.device) -> torch.Tensor:
        """H,W,3 uint8 RGB -> 1,3,H',W' float in [0,1], resized and padded."""
        x = self._resize(torch.from_numpy(np.ascontiguousarray(frame)).to(device).permute(2, 0, 1)[None].float() / 255.0)
        if self.padding == "replicate":
            return F.pad(x, self.pad, mode="replicate")
        left, right, top, bottom = self.pad
        mean = torch.tensor(IMAGENET_MEAN, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
        out = mean.expand(1, 3, x.shape[2] + top + bottom, x.shape[3] + left + right).clone()
        out[:, :, top : top + x.shape[2], left : left + x.shape[3]] = x
        return out

    def masks_to_tensor(self, masks: torch.Tensor) -> torch.Tensor:
        """N,H,W float masks at original size -> 1,N,H',W' on the padded grid (zero padding)."""
        return F.pad(self._resize(masks[None].float()), self.pad)

    def _resize(self, x: torch.Tensor) -> torch.Tensor:
        """Original size -> inner size."""
        return resample(x, (self.inner_height, self.inner_width))

    def probs_to_original(self, probs: torch.Tensor) -> torch.Tensor:
        """1,C,H',W' on the padded grid -> 1,C,H,W at the original size (un-pad, then resample)."""
        left, right, top, bottom = self.pad
        inner = probs[:, :, top : probs.shape[2] - bottom, left : probs.shape[3] - right]
        return resample(inner, (self.height, self.width))


def resample(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """N,C,h,w -> N,C,size: area averaging to shrink, bilinear to enlarge, untouched at the same size."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    if x.shape[-2] > size[0]:
        return F.interpolate(x, size=size, mode="area")
    return bilinear_enlarge(x, size)


def bilinear_enlarge(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resampling (align_corners=False) as gathers and separate multiplies and adds, so every value
    is the same arithmetic on any thread count.

    `F.interpolate(mode="bilinear")` on a CPU gives values an ulp apart on 1 and on 2 threads (its loop
    splits at thread boundaries into paths that round differently); bf16 inference turns that into
    different masks, so a model scored in a 1-CPU Ray task and served on more threads disagreed.
    """
    def axis(n_in: int, n_out: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        src = ((torch.arange(n_out, dtype=torch.float32, device=x.device) + 0.5) * (n_in / n_out) - 0.5).clamp(min=0)
        low = src.floor().long().clamp(max=n_in - 1)
        high = (low + 1).clamp(max=n_in - 1)
        w_high = (src - low).to(x.dtype)
        return low, high, 1 - w_high, w_high

    y0, y1, wy0, wy1 = axis(x.shape[-2], size[0])
    x0, x1, wx0, wx1 = axis(x.shape[-1], size[1])
    rows = x[..., y0, :] * wy0[:, None] + x[..., y1, :] * wy1[:, None]
    return rows[..., x0] * wx0 + rows[..., x1] * wx1


VOID = 255  # DAVIS 2017 / YouTube-VOS "void" label: neither background nor an object


def given_masks(annotation: np.ndarray, index: int, geometry: FrameGeometry, object_ids: list[int],
                join_frames: list[int], device: torch.device) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """Read a given mask: check its size, let ids not seen before join (at frame `index`), and return
    the one-hot of every known object (1,O,H',W'), where the mask labels a pixel (1,1,H',W'), and
    whether an object joined. Shared by the inference engine and the correspondence probe.
    """
    from components.errors import DataError

    if annotation.shape[:2] != (geometry.height, geometry.width):
        raise DataError(f"mask of frame {index} is {annotation.shape[1]}x{annotation.shape[0]}, "
                        f"the frame is {geometry.width}x{geometry.height}")
    present = [int(v) for v in np.unique(annotation) if v not in (0, VOID)]
    new_ids = [v for v in present if v not in object_ids]
    object_ids.extend(new_ids)
    join_frames.extend([index] * len(new_ids))
    if not object_ids:  # nothing given yet and nothing known: no channels to draw
        return torch.zeros(1, 0, 1, 1, device=device), torch.zeros(1, 1, 1, 1, device=device), False
    ids = torch.as_tensor(object_ids, device=device, dtype=torch.int64)
    given = torch.from_numpy(annotation.astype(np.int64)).to(device)
    onehot = geometry.masks_to_tensor((given[None] == ids[:, None, None]).float())
    labelled = geometry.masks_to_tensor(((given > 0) & (given != VOID)).float()[None])
    return onehot, labelled, bool(new_ids)

