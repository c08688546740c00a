"""The probe's only view of a model: a key encoder, frames in, matching keys out.

Pluggable so that tests can hand in keys made by hand (say, keys that encode each pixel's true
source position) and so that XMem, when it exists, needs one adapter and nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from components.inference.frames import FrameGeometry

ENCODE_BATCH = 8  # frames per key-encoder call


@dataclass(frozen=True)
class KeyEncoder:
    """`encode`: frames N,3,H,W in [0, 1] (H, W multiples of `stride`) -> keys N,C,H/stride,W/stride."""

    encode: Callable[[torch.Tensor], torch.Tensor]
    stride: int = 16
    device: torch.device = torch.device("cpu")

    def __post_init__(self) -> None:
        if self.stride < 1:
            raise ValueError(f"key stride must be >= 1, got {self.stride}")


def as_key_encoder(model: object, device: torch.device | str | None = None) -> KeyEncoder:
    """A KeyEncoder from an STCN-like model (anything with `encode_key(frames).key`; its stride is the
    model config's `output_stride`, else 16), a KeyEncoder or a callable (stride 16).

    A model is moved to `device` (default: where its parameters are) and put in eval mode.
    """
    if isinstance(model, KeyEncoder):
        return model if device is None else KeyEncoder(model.encode, model.stride, torch.device(device))
    if hasattr(model, "encode_key"):
        module: torch.nn.Module = model  # type: ignore[assignment]
        target = torch.device(device) if device is not None else next(module.parameters()).device
        module.to(target).eval()
        stride = getattr(getattr(module, "config", None), "output_stride", 16)  # 8 for a dilated-layer3 model
        return KeyEncoder(lambda frames: module.encode_key(frames).key, stride, target)
    if callable(model):
        return KeyEncoder(model, 16, torch.device(device or "cpu"))  # type: ignore[arg-type]
    raise TypeError(f"not a key encoder: {type(model).__name__}")


@dataclass(frozen=True)
class VideoKeys:
    """Keys of every frame of one video and how its frames map onto the key grid."""

    keys: torch.Tensor  # T, C, h, w (fp32, on the encoder's device)
    geometry: FrameGeometry  # original size <-> padded size (a multiple of the stride)
    stride: int

    @property
    def grid_size(self) -> tuple[int, int]:
        return self.keys.shape[-2], self.keys.shape[-1]

    def grid_to_pixels(self, cells_yx: torch.Tensor) -> torch.Tensor:
        """Cell centres (..., 2 as row, col) -> original-frame pixel positions (..., 2 as x, y)."""
        g = self.geometry
        left, _, top, _ = g.pad
        centre = cells_yx.double() * self.stride + (self.stride - 1) / 2  # padded-frame pixel centres
        x = (centre[..., 1] - left + 0.5) * (g.width / g.inner_width) - 0.5
        y = (centre[..., 0] - top + 0.5) * (g.height / g.inner_height) - 0.5
        return torch.stack([x, y], dim=-1)

    def pixels_to_grid(self, points_xy: torch.Tensor) -> torch.Tensor:
        """Original-frame pixels (..., 2 as x, y) -> continuous grid coordinates (..., 2 as row, col); cell centres are integers."""
        g = self.geometry
        left, _, top, _ = g.pad
        x = (points_xy[..., 0].double() + 0.5) * (g.inner_width / g.width) - 0.5 + left
        y = (points_xy[..., 1].double() + 0.5) * (g.inner_height / g.height) - 0.5 + top
        return torch.stack([(y + 0.5) / self.stride - 0.5, (x + 0.5) / self.stride - 0.5], dim=-1)


def encode_video(encoder: KeyEncoder, frames: Sequence[np.ndarray], max_short_side: int | None = None) -> VideoKeys:
    """Keys of every frame (H,W,3 uint8 RGB each, decoded on access), `ENCODE_BATCH` frames per call."""
    if len(frames) == 0:
        raise ValueError("a video with no frames")
    first = frames[0]
    geometry = FrameGeometry.for_size(first.shape[0], first.shape[1], max_short_side, multiple=encoder.stride)
    expected = ((geometry.inner_height + sum(geometry.pad[2:])) // encoder.stride,
                (geometry.inner_width + sum(geometry.pad[:2])) // encoder.stride)
    chunks = []
    with torch.inference_mode():
        for start in range(0, len(frames), ENCODE_BATCH):
            batch = [frames[i] for i in range(start, min(start + ENCODE_BATCH, len(frames)))]
            for offset, frame in enumerate(batch):
                if frame.shape[:2] != (geometry.height, geometry.width):
                    raise ValueError(f"frame {start + offset} is {frame.shape[1]}x{frame.shape[0]}, "
                                     f"the video is {geometry.width}x{geometry.height}")
            x = torch.cat([geometry.frame_to_tensor(f, encoder.device) for f in batch])  # N, 3, H', W'
            keys = encoder.encode(x).float()
            if keys.dim() != 4 or keys.shape[0] != len(batch) or tuple(keys.shape[-2:]) != expected:
                raise ValueError(f"key encoder gave {tuple(keys.shape)} for {tuple(x.shape)} frames at stride "
                                 f"{encoder.stride}; expected N,C,{expected[0]},{expected[1]}")
            chunks.append(keys)
    return VideoKeys(torch.cat(chunks), geometry, encoder.stride)
