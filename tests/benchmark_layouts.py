"""Tiny generated datasets in the layouts of benchmarks without public ground truth.

YouTube-VOS valid (every 5th frame stored, first-appearance masks, meta.json listing the scored
frames; optionally the all-frames JPEGImages), MOSE valid (every frame, only the first mask, no
meta.json) and DAVIS 2017 test-dev (JPEGImages/480p, Annotations/480p with the first mask). Each
returns what a correct archive must hold, computed from the generator's own plan (never from the
code under test).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

# a palette that is not DAVIS's (object 1 orange, 2 teal), so a copied palette is visible
OWN_PALETTE = [0, 0, 0, 250, 130, 10, 20, 160, 170] + [7] * (3 * 253)


@dataclass(frozen=True)
class PlannedVideo:
    """One generated video: its size, the frames an archive must hold, and where object 2 joins."""

    name: str
    height: int
    width: int
    frames: tuple[str, ...]  # frame names stored on disk, in order
    archive_frames: tuple[str, ...]  # frame names the (default) archive must hold
    late_object_frame: str | None  # frame whose mask first holds object 2 (None: both objects from the start)


def _boxes(t: int, height: int, width: int, with_second: bool) -> np.ndarray:
    ids = np.zeros((height, width), np.uint8)
    ids[4:16, 3 + t % 20 : 15 + t % 20] = 1
    if with_second:
        ids[height - 14 : height - 2, width - 16 : width - 4] = 2
    return ids


def _frame(ids: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    image = rng.integers(0, 256, (*ids.shape, 3), dtype=np.uint8)
    image[ids == 1] = (230, 120, 20)
    image[ids == 2] = (30, 150, 160)
    return image


def _write_jpeg(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path, quality=95)


def write_indexed(path: Path, ids: np.ndarray, palette: list[int]) -> None:
    """An indexed PNG mask with `palette`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(ids, mode="P")
    image.putpalette(palette)
    image.save(path)


def make_youtube_vos_valid(root: Path, all_frames: bool = False) -> list[PlannedVideo]:
    """`root/valid/` with two videos; in `late` object 2 first appears in frame 00010.

    Stored frames are every 5th (00000 .. 00015), or every frame 00000 .. 00015 with `all_frames`
    (as valid_all_frames); masks and meta.json are those of the every-5th split either way.
    """
    rng = np.random.default_rng(3)
    base, plans, meta = root / "valid", [], {"videos": {}}
    for name, (height, width), join in (("early", (40, 56), 0), ("late", (36, 52), 10)):
        stored = range(16) if all_frames else range(0, 16, 5)
        for t in stored:
            _write_jpeg(base / "JPEGImages" / name / f"{t:05d}.jpg", _frame(_boxes(t, height, width, t >= join), rng))
        first = _boxes(0, height, width, join == 0)
        write_indexed(base / "Annotations" / name / "00000.png", first, OWN_PALETTE)
        if join:
            only_new = np.where(_boxes(join, height, width, True) == 2, 2, 0).astype(np.uint8)
            write_indexed(base / "Annotations" / name / f"{join:05d}.png", only_new, OWN_PALETTE)
        every5 = [f"{t:05d}" for t in range(0, 16, 5)]
        meta["videos"][name] = {"objects": {"1": {"category": "box", "frames": every5},
                                            "2": {"category": "box", "frames": [f for f in every5 if int(f) >= join]}}}
        plans.append(PlannedVideo(name, height, width, tuple(f"{t:05d}" for t in stored), tuple(every5),
                                  f"{join:05d}" if join else None))
    (base / "meta.json").write_text(json.dumps(meta))
    return plans


def make_mose_valid(root: Path) -> list[PlannedVideo]:
    """`root/valid/` with two videos of 7 frames each and only the first mask (two objects)."""
    rng = np.random.default_rng(4)
    plans = []
    for name, (height, width) in (("m1", (40, 56)), ("m2", (38, 50))):
        for t in range(7):
            _write_jpeg(root / "valid/JPEGImages" / name / f"{t:05d}.jpg", _frame(_boxes(t, height, width, True), rng))
        write_indexed(root / "valid/Annotations" / name / "00000.png", _boxes(0, height, width, True), OWN_PALETTE)
        frames = tuple(f"{t:05d}" for t in range(7))
        plans.append(PlannedVideo(name, height, width, frames, frames, None))
    return plans


def make_davis_test_dev(root: Path, davis_palette: list[int]) -> list[PlannedVideo]:
    """`root/JPEGImages/480p`, `root/Annotations/480p` with one 6-frame sequence and its first mask."""
    rng = np.random.default_rng(5)
    height, width = 40, 56
    for t in range(6):
        _write_jpeg(root / "JPEGImages/480p/seq" / f"{t:05d}.jpg", _frame(_boxes(t, height, width, True), rng))
    write_indexed(root / "Annotations/480p/seq/00000.png", _boxes(0, height, width, True), davis_palette)
    frames = tuple(f"{t:05d}" for t in range(6))
    return [PlannedVideo("seq", height, width, frames, frames, None)]
