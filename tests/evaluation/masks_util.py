"""Helpers that write mask PNGs in the formats the scorer reads (test support, not tests)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

PALETTE = [0, 0, 0, 128, 0, 0, 0, 128, 0, 128, 128, 0, 0, 0, 128] + [0] * (256 * 3 - 15)
PALETTE[255 * 3 : 256 * 3] = [224, 224, 192]


def write_indexed(path: Path, labels: np.ndarray) -> Path:
    """DAVIS 2017 style: palette PNG whose index is the object id (255 = void)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(labels.astype(np.uint8), mode="P")
    image.putpalette(PALETTE)
    image.save(path)
    return path


def write_binary(path: Path, mask: np.ndarray) -> Path:
    """DAVIS 2016 style: grayscale PNG, foreground 255 on background 0."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((mask > 0).astype(np.uint8) * 255, mode="L").save(path)
    return path


def write_sequence(folder: Path, frames: list[np.ndarray], indexed: bool = True) -> list[Path]:
    """Frames 00000.png, 00001.png, ... of one sequence."""
    writer = write_indexed if indexed else write_binary
    return [writer(folder / f"{t:05d}.png", labels) for t, labels in enumerate(frames)]


def square(shape: tuple[int, int], top: int, left: int, size: int, value: int = 1) -> np.ndarray:
    """An id map with one size x size square of `value`."""
    labels = np.zeros(shape, dtype=np.uint8)
    labels[top : top + size, left : left + size] = value
    return labels
