"""Videos whose pixels spell out where they come from, and key encoders made by hand from them.

Every pixel's colour encodes its source: background pixel (x, y) is (4x+2, 4y+2, 0), pixel (u, v) of
object o's sprite is (4u+2, 4v+2, 60 o). The background stands still and objects slide, so keys that
are the colours themselves (stride 1) make the true match the nearest key, and only that one is exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from components.data.synthetic import SyntheticMotion
from components.evaluation.videos import EvalVideo, first_appearances
from components.probe import KeyEncoder

SIZE = 24


@dataclass(frozen=True)
class Box:
    object_id: int
    top: int
    left: int
    height: int
    width: int
    velocity: tuple[int, int]  # (dx, dy) pixels per frame
    first_frame: int = 0  # drawn (and annotated) from this frame on

    def origin(self, t: int) -> tuple[int, int]:
        return self.left + self.velocity[0] * t, self.top + self.velocity[1] * t


def coded_video(boxes: list[Box], frames: int, name: str = "coded") -> EvalVideo:
    """Frames, ground truth on every frame, each object given at its first frame, and the true motion."""
    ys, xs = np.mgrid[0:SIZE, 0:SIZE]
    images, masks = [], []
    for t in range(frames):
        image = np.stack([4 * xs + 2, 4 * ys + 2, np.zeros_like(xs)], axis=-1).astype(np.uint8)
        ids = np.zeros((SIZE, SIZE), np.uint8)
        for box in boxes:
            if t < box.first_frame:
                continue
            x0, y0 = box.origin(t)
            v, u = np.mgrid[0 : box.height, 0 : box.width]
            image[y0 : y0 + box.height, x0 : x0 + box.width] = np.stack(
                [4 * u + 2, 4 * v + 2, np.full_like(u, 60 * box.object_id)], axis=-1)
            ids[y0 : y0 + box.height, x0 : x0 + box.width] = box.object_id
        images.append(image)
        masks.append(ids)
    identity = np.tile(np.array([[1.0, 0, 0], [0, 1.0, 0]]), (frames, 1, 1))
    objects = {}
    for box in boxes:  # sprite pixel (u, v) -> frame pixel (x0 + u, y0 + v)
        affines = identity.copy()
        for t in range(frames):
            affines[t, :, 2] = box.origin(t)
        objects[box.object_id] = affines
    motion = SyntheticMotion(background=identity, objects=objects, depth_order=tuple(b.object_id for b in boxes))
    ground_truth = dict(enumerate(masks))
    return EvalVideo(name, tuple(f"{t:05d}" for t in range(frames)), images, first_appearances(ground_truth),
                     ground_truth, extras={"motion": motion.to_json()})


def colour_keys(frames: torch.Tensor) -> torch.Tensor:
    """Keys = the colours (0..255 levels, x3 for a sharp softmax): N,3,H,W -> N,3,H,W at stride 1."""
    return frames * 255 * 3


def shuffled_keys(seed: int = 0):
    """Colour keys with every frame's pixels moved to random places (a fresh permutation per frame)."""
    generator = torch.Generator().manual_seed(seed)

    def encode(frames: torch.Tensor) -> torch.Tensor:
        keys = colour_keys(frames)
        n, c, h, w = keys.shape
        flat = keys.reshape(n, c, h * w)
        return torch.stack([flat[i][:, torch.randperm(h * w, generator=generator)] for i in range(n)]).view(n, c, h, w)

    return encode


EXACT = KeyEncoder(colour_keys, stride=1)
SHUFFLED = KeyEncoder(shuffled_keys(), stride=1)
