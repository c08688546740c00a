"""`ClipBatch`: the typed batch of training clips that data loaders produce and the model consumes.

It is the contract between the data plane and the training step: frames as float RGB in [0, 1]
(normalisation lives in the model), one binary mask per object slot, and a selector saying which
object slots are real (a clip with one object leaves its second slot empty).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class ClipBatch:
    frames: torch.Tensor  # B, T, 3, H, W  float32 RGB in [0, 1]
    masks: torch.Tensor  # B, T, O, H, W  float32 in {0, 1}; slot o is object o+1
    selector: torch.Tensor  # B, O  float32 in {0, 1}; 1 where the object slot holds an object

    def __post_init__(self) -> None:
        b, t, c, h, w = self.frames.shape
        if c != 3:
            raise ValueError(f"frames must have 3 channels, got {c}")
        if self.masks.shape[:2] != (b, t) or self.masks.shape[3:] != (h, w):
            raise ValueError(f"masks {tuple(self.masks.shape)} do not match frames {tuple(self.frames.shape)}")
        if self.selector.shape != (b, self.masks.shape[2]):
            raise ValueError(f"selector {tuple(self.selector.shape)} does not match masks {tuple(self.masks.shape)}")

    @property
    def num_objects(self) -> int:
        return self.masks.shape[2]

    def to(self, device: torch.device | str, non_blocking: bool = False) -> "ClipBatch":
        """Move every tensor to `device` in one call."""
        return ClipBatch(
            frames=self.frames.to(device, non_blocking=non_blocking),
            masks=self.masks.to(device, non_blocking=non_blocking),
            selector=self.selector.to(device, non_blocking=non_blocking),
        )

    def labels(self) -> torch.Tensor:
        """Index labels per pixel (0 = background, o+1 = object slot o): B, T, H, W int64."""
        present = self.masks * self.selector[:, None, :, None, None]
        background = (present.sum(dim=2, keepdim=True) < 0.5).float()
        # max(dim).indices: the same first-maximum index as argmax, but vectorised on CPU for a middle
        # dim (0.6 vs 7.9 ms for a 4x3x3x96x96 batch, called twice per step)
        return torch.cat([background, present], dim=2).max(dim=2).indices


def random_clip_batch(
    batch_size: int = 2,
    num_frames: int = 3,
    size: int = 64,
    num_objects: int = 2,
    generator: torch.Generator | None = None,
) -> ClipBatch:
    """A batch of textured noise clips with moving rectangles as objects; for tests and benchmarks.

    Each object is a rectangle of a distinct colour that shifts a little between frames, so the
    clip has real temporal correspondence a model can learn; the second slot is empty in half
    of the clips when `num_objects` is 2.
    """
    g = generator
    frames = torch.rand(batch_size, num_frames, 3, size, size, generator=g) * 0.3
    masks = torch.zeros(batch_size, num_frames, num_objects, size, size)
    selector = torch.ones(batch_size, num_objects)
    for b in range(batch_size):
        for o in range(num_objects):
            if o > 0 and torch.rand(1, generator=g).item() < 0.5:
                selector[b, o] = 0.0
                continue
            colour = torch.rand(3, generator=g) * 0.7 + 0.3
            side = int(size * (0.2 + 0.2 * torch.rand(1, generator=g).item()))
            y, x = (torch.randint(0, size - side, (2,), generator=g)).tolist()
            dy, dx = (torch.randint(-2, 3, (2,), generator=g)).tolist()
            for t in range(num_frames):
                y0 = min(max(y + t * dy, 0), size - side)
                x0 = min(max(x + t * dx, 0), size - side)
                masks[b, t, o, y0 : y0 + side, x0 : x0 + side] = 1.0
                # later objects sit on top of earlier ones
                masks[b, t, :o, y0 : y0 + side, x0 : x0 + side] = 0.0
                frames[b, t, :, y0 : y0 + side, x0 : x0 + side] = colour[:, None, None]
    return ClipBatch(frames=frames, masks=masks, selector=selector)
