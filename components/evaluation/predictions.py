"""Writing predictions in DAVIS layout: indexed palette PNGs, one folder per sequence, committed whole.

A sequence is written into a hidden temporary folder beside its final place and renamed there only
when every frame is written, so a crash or a bad frame never leaves half a sequence behind.
Propagation is streamed: each label map is written as soon as it is computed, and only the frames a
caller asks to keep (e.g. the annotated ones, for scoring) stay in memory.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import numpy as np
from PIL import Image
from tqdm import tqdm

from components.data.palette import voc_palette
from components.inference import VideoPropagator


def davis_palette() -> tuple[int, ...]:
    """The 256-colour DAVIS / PASCAL VOC palette, flat (r, g, b, r, g, b, ...)."""
    return voc_palette()


def write_label_png(path: Path, labels: np.ndarray) -> None:
    """An (H, W) id map as an indexed PNG with the DAVIS palette (ids above 255: 16-bit grayscale)."""
    if labels.max(initial=0) > 255:
        Image.fromarray(labels.astype(np.uint16)).save(path, format="PNG")
        return
    image = Image.fromarray(labels.astype(np.uint8, copy=False), mode="P")
    image.putpalette(davis_palette())
    image.save(path, format="PNG")


class SequenceFolder:
    """`with SequenceFolder(final) as tmp:` write into `tmp`; on success it becomes `final`, else it is removed.

    An existing `final` is replaced (moved aside, then deleted) only once the new folder is complete.
    """

    def __init__(self, final: Path) -> None:
        self.final = Path(final)
        self.temporary = self.final.parent / f".{self.final.name}.partial-{uuid.uuid4().hex[:8]}"

    def __enter__(self) -> Path:
        self.temporary.mkdir(parents=True)
        return self.temporary

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        if kind is not None:
            shutil.rmtree(self.temporary, ignore_errors=True)
            return
        old = None
        if self.final.exists():
            old = self.final.parent / f".{self.final.name}.old-{uuid.uuid4().hex[:8]}"
            os.replace(self.final, old)
        os.replace(self.temporary, self.final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


@dataclass(frozen=True)
class PropagatedSequence:
    """What propagating one sequence gave: the kept label maps and the model's time."""

    kept: dict[int, np.ndarray]  # frame index -> (H, W) id map, for the indices asked for
    frame_count: int
    compute_seconds: float  # model time only: decoding and writing excluded

    @property
    def fps(self) -> float:
        return self.frame_count / self.compute_seconds if self.compute_seconds > 0 else float("nan")


FrameCallback = Callable[[int, np.ndarray, np.ndarray], None]  # (frame index, RGB frame, id map)


def propagate_to_folder(
    propagator: VideoPropagator,
    frames: Sequence[np.ndarray],
    frame_names: Sequence[str],
    annotations: Mapping[int, np.ndarray],
    folder: Path,
    *,
    keep: Collection[int] = (),
    on_frame: FrameCallback | None = None,
    progress: bool = False,
    desc: str = "propagate",
) -> PropagatedSequence:
    """Propagate `annotations` through `frames`, writing <folder>/<frame name>.png for every frame.

    Time spent fetching frames (a lazy sequence decodes here) and writing files is not counted.
    """
    if len(frame_names) != len(frames):
        raise ValueError(f"{len(frame_names)} frame names for {len(frames)} frames")
    source = _TimedFrames(frames)
    kept, wanted, seconds = {}, set(keep), 0.0
    # closing(): the generator holds inference mode and autocast open; end them even when a write fails
    with closing(propagator.iter_labels(source, annotations)) as labels, \
            tqdm(total=len(frames), desc=desc, unit="frame", disable=not progress, leave=False) as bar:
        for index, name in enumerate(frame_names):
            start = time.perf_counter()
            label = next(labels)
            seconds += time.perf_counter() - start
            write_label_png(Path(folder) / f"{name}.png", label)
            if index in wanted:
                kept[index] = label
            if on_frame is not None:
                on_frame(index, source.last, label)
            bar.update()
    return PropagatedSequence(kept, len(frames), max(seconds - source.seconds, 0.0))


class _TimedFrames:
    """Iterates a frame sequence, adding up the time spent producing frames and keeping the last one."""

    def __init__(self, frames: Sequence[np.ndarray]) -> None:
        self.frames = frames
        self.seconds = 0.0
        self.last = np.zeros((0, 0, 3), np.uint8)

    def __len__(self) -> int:
        return len(self.frames)

    def __iter__(self) -> Iterator[np.ndarray]:
        for index in range(len(self.frames)):
            start = time.perf_counter()
            self.last = self.frames[index]
            self.seconds += time.perf_counter() - start
            yield self.last
