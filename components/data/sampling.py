"""Which frames make a training clip: the max-skip curriculum and the STCN and XMem frame rules.

Frames are positions among a video's *annotated* frames (training needs a mask on every frame), so
a skip in source frames is divided by the annotation interval (YouTube-VOS: 5). The clip's first
frame, the memory's reference, is always drawn among frames that hold an object, so no retry loop
is needed; with time reversal the clip is planned forward on the mirrored video.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

import numpy as np

from components.data.config import SamplerConfig


@dataclass(frozen=True)
class ClipPlan:
    """Annotated-frame positions in clip order, and whether time runs backwards in the clip."""

    positions: list[int]
    reversed: bool


def max_skip_at(progress: float, config: SamplerConfig) -> int:
    """The curriculum's max skip (source frames) at `progress` in [0, 1]; switches happen at >= the point."""
    return config.max_skip[bisect.bisect_right(config.skip_switch_at, progress)]


def frame_jump(max_skip: int, annotation_interval: int) -> int:
    """Max gap in annotated-frame positions: the skip divided by the annotation interval, at least 1."""
    return max(1, max_skip // max(1, annotation_interval))


def plan_clip(
    has_objects: list[bool], num_frames: int, jump: int, rule: str, reverse: bool, rng: np.random.Generator
) -> ClipPlan:
    """Plan one clip over a video whose annotated frames carry objects where `has_objects` is True."""
    n = len(has_objects)
    if not any(has_objects):
        raise ValueError("plan_clip: no annotated frame holds an object")
    if _room(has_objects, reverse) < num_frames - 1 <= _room(has_objects, not reverse):
        reverse = not reverse  # objects only near one end: run the other way rather than repeat frames
    mirrored = has_objects[::-1] if reverse else list(has_objects)
    forward = _stcn(mirrored, num_frames, jump, rng) if rule == "stcn" else _xmem(mirrored, num_frames, jump, rng)
    positions = [n - 1 - p for p in forward] if reverse else forward
    return ClipPlan(positions=positions, reversed=reverse)


def _room(has: list[bool], reverse: bool) -> int:
    """Most frames that can follow an object frame in the clip's direction."""
    n = len(has)
    return max(p if reverse else n - 1 - p for p in range(n) if has[p])


def _stcn(has: list[bool], count: int, jump: int, rng: np.random.Generator) -> list[int]:
    """Sequential gaps: each next frame 1..jump positions after the previous one (STCN's rule, T frames).

    Gaps shrink only when no object frame leaves room for them, and reach 0 (repeats) only when no
    object frame has T-1 frames after it.
    """
    n = len(has)
    gaps = rng.integers(1, jump + 1, size=count - 1) if count > 1 else np.zeros(0, dtype=np.int64)
    starts = [p for p in range(n) if has[p] and p + int(gaps.sum()) <= n - 1]
    if not starts:  # shrink the gaps to fit after a start that still has room for distinct frames
        starts = [p for p in range(n) if has[p] and p + count - 1 <= n - 1] or [has.index(True)]
    start = starts[int(rng.integers(len(starts)))]
    gaps = _shrink(gaps, n - 1 - start)
    return [start + int(s) for s in np.concatenate([[0], np.cumsum(gaps)])]


def _xmem(has: list[bool], count: int, jump: int, rng: np.random.Generator) -> list[int]:
    """Grown set: each new frame within `jump` of one already chosen, all after the first (XMem's rule)."""
    n = len(has)
    anchors = [p for p in range(n) if has[p] and n - 1 - p >= count - 1] or [has.index(True)]
    first = anchors[int(rng.integers(len(anchors)))]
    chosen = {first}
    for _ in range(count - 1):
        candidates = sorted(
            {q for c in chosen for q in range(max(first + 1, c - jump), min(n, c + jump + 1))} - chosen
        )
        if not candidates:
            break
        chosen.add(candidates[int(rng.integers(len(candidates)))])
    frames = sorted(chosen)
    return frames + [frames[-1]] * (count - len(frames))  # repeats only for videos shorter than the clip


def _shrink(gaps: np.ndarray, room: int) -> np.ndarray:
    """Reduce the largest gaps one step at a time until they sum to at most `room`."""
    gaps = gaps.copy()
    while gaps.size and gaps.sum() > room:
        gaps[int(np.argmax(gaps))] -= 1
    return gaps
