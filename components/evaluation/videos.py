"""Videos to evaluate: frames read lazily, the masks given to the method, and the ground truth.

Two sources: a DAVIS-layout folder (JPEGImages/[480p/]<seq>, Annotations/[480p/]<seq>; the first
annotated frame's mask is given) and an ingested dataset URI (each object's first mask is given;
every annotated frame is ground truth).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, overload

import numpy as np
from PIL import Image

from components.errors import DataError
from components.evaluation.masks import (
    VOID_ID,
    check_mask_files,
    list_frames,
    list_sequences,
    read_label_map,
    resolve_annotation_root,
    resolve_image_root,
)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


@dataclass(frozen=True)
class EvalVideo:
    """One video: frames in order, the masks given to the method, and the masks it is scored on.

    `annotations` and `ground_truth` map a frame index to an (H, W) id map (0 background, 255 void).
    `gt_dir` / `image_dir` name folders already holding <frame>.png / <frame>.jpg, when there are any
    (reports read from them; without them the evaluation writes its own copies).
    """

    name: str
    frame_names: tuple[str, ...]
    frames: Sequence[np.ndarray]  # H, W, 3 uint8 RGB each; may decode on access
    annotations: Mapping[int, np.ndarray]
    ground_truth: Mapping[int, np.ndarray]
    gt_dir: Path | None = None
    image_dir: Path | None = None
    extras: Mapping[str, Any] = field(default_factory=dict)  # the source's metadata, e.g. a synthetic video's motion

    def __post_init__(self) -> None:
        if len(self.frame_names) != len(self.frames):
            raise ValueError(f"{self.name}: {len(self.frame_names)} frame names for {len(self.frames)} frames")


class LazyFrames(Sequence[np.ndarray]):
    """A sequence whose items are produced by `read(index)` when asked for (one frame in memory at a time)."""

    def __init__(self, length: int, read: Callable[[int], np.ndarray]) -> None:
        self.length = length
        self.read = read

    def __len__(self) -> int:
        return self.length

    @overload
    def __getitem__(self, index: int) -> np.ndarray: ...
    @overload
    def __getitem__(self, index: slice) -> list[np.ndarray]: ...

    def __getitem__(self, index: int | slice) -> np.ndarray | list[np.ndarray]:
        if isinstance(index, slice):
            return [self.read(i) for i in range(*index.indices(self.length))]
        if not -self.length <= index < self.length:
            raise IndexError(index)
        return self.read(index % self.length)


def read_image(path: Path) -> np.ndarray:
    """RGB (H, W, 3) uint8 of an image file; DataError naming the file when it is missing or corrupt.

    Pillow refuses truncated JPEGs (OpenCV would fill them with grey and carry on).
    """
    try:
        with Image.open(path) as image:
            return np.array(image.convert("RGB"))
    except FileNotFoundError:
        raise DataError(f"missing frame {path}") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise DataError(f"unreadable image {path}: {exc}") from None


def image_size(path: Path) -> tuple[int, int]:
    """(height, width) from an image file's header, without decoding it."""
    try:
        with Image.open(path) as image:
            width, height = image.size
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise DataError(f"unreadable image {path}: {exc}") from None
    return height, width


def list_image_files(folder: Path) -> list[Path]:
    """Frames of a folder (.jpg, .jpeg, .png, any case), sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"frame folder {folder} does not exist")
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def image_frames(paths: Sequence[Path]) -> LazyFrames:
    """Frames decoded from `paths` on access."""
    paths = list(paths)
    return LazyFrames(len(paths), lambda i: read_image(paths[i]))


def first_appearances(masks: Mapping[int, np.ndarray]) -> dict[int, np.ndarray]:
    """Keep each object only in the first mask (by frame index) where it appears; drop masks left empty.

    This is what a semi-supervised method is given: an object's first mask, never a later one.
    Void (255) is dropped too: the propagator ignores it.
    """
    seen: set[int] = set()
    given = {}
    for index in sorted(masks):
        mask = masks[index]
        ids = [int(v) for v in np.unique(mask) if v not in (0, VOID_ID) and int(v) not in seen]
        if ids:
            given[index] = np.where(np.isin(mask, ids), mask, 0).astype(mask.dtype)
            seen.update(ids)
    return given


def davis_videos(root: str | Path, sequences: Sequence[str] | None = None) -> Iterator[EvalVideo]:
    """Videos of a DAVIS-layout folder, one at a time; the first annotated frame's mask is given.

    `root` holds JPEGImages/[480p/] and Annotations/[480p/]. Ground truth is read whole (one uint8
    map per annotated frame); frames are decoded when propagation asks for them.
    """
    gt_root = resolve_annotation_root(Path(root))
    image_root = resolve_image_root(gt_root)
    if image_root is None:
        raise DataError(f"{root}: no JPEGImages folder beside {gt_root}")
    names = _select(list_sequences(gt_root), sequences, str(gt_root))
    for name in names:
        yield _davis_video(name, gt_root / name, image_root / name)


def _davis_video(name: str, gt_dir: Path, image_dir: Path) -> EvalVideo:
    paths = list_image_files(image_dir)
    if not paths:
        raise DataError(f"no frames (.jpg/.jpeg/.png) in {image_dir}")
    check_mask_files([gt_dir / f"{stem}.png" for stem in list_frames(gt_dir)], name, first_frame=paths[0])
    index = {p.stem: i for i, p in enumerate(paths)}
    ground_truth = {}
    for stem in list_frames(gt_dir):
        if stem not in index:
            raise DataError(f"{gt_dir / stem}.png has no frame {stem} in {image_dir}")
        ground_truth[index[stem]] = _as_uint8(read_label_map(gt_dir / f"{stem}.png"), gt_dir / f"{stem}.png")
    first = min(ground_truth)
    return EvalVideo(
        name=name,
        frame_names=tuple(p.stem for p in paths),
        frames=image_frames(paths),
        annotations={first: ground_truth[first]},
        ground_truth=ground_truth,
        gt_dir=gt_dir,
        image_dir=image_dir,
    )


def dataset_videos(
    uri: str, sequences: Sequence[str] | None = None, storage_options: dict | None = None
) -> Iterator[EvalVideo]:
    """Videos of an ingested dataset (manifest + Parquet shards at `uri`), one at a time.

    Each object's first annotated mask is given; every annotated frame is ground truth.
    """
    from components.data.dataset import VideoDataset  # the data plane (pyarrow) only when asked for

    dataset = VideoDataset(uri, storage_options)
    for name in _select(dataset.names, sequences, uri):
        record = dataset.read(name)
        ground_truth = {index: record.mask(index) for index in record.annotated}
        yield EvalVideo(
            name=name,
            frame_names=tuple(record.frame_names),
            frames=LazyFrames(record.num_frames, record.frame),
            annotations=first_appearances(ground_truth),
            ground_truth=ground_truth,
            extras=record.extras,
        )


def open_videos(source: str | Path, sequences: Sequence[str] | None = None) -> Iterator[EvalVideo]:
    """Videos of `source`: an ingested dataset (a URI, or a folder with manifest.json) or a DAVIS folder."""
    text = str(source)
    if "://" in text or (Path(text) / "manifest.json").is_file():
        return dataset_videos(text, sequences)
    return davis_videos(Path(text), sequences)


def _select(names: Sequence[str], wanted: Sequence[str] | None, where: str) -> list[str]:
    if wanted is None:
        if not names:
            raise DataError(f"{where}: no sequences")
        return list(names)
    missing = sorted(set(wanted) - set(names))
    if missing:
        raise DataError(f"{where}: no sequence named {missing[0]!r}")
    return list(dict.fromkeys(wanted))


def _as_uint8(labels: np.ndarray, path: Path) -> np.ndarray:
    if labels.dtype != np.uint8:
        if labels.max(initial=0) > 255:
            raise DataError(f"{path}: object ids above 255 are not supported")
        labels = labels.astype(np.uint8)
    return labels
