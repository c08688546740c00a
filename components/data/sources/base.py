"""What every source shares: the `VideoSource` protocol, file listing through fsspec, and the one
routine that turns a folder of frames plus a folder of masks into a checked `VideoRecord`."""

from __future__ import annotations

import posixpath
import statistics
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from components.data.codec import (
    check_jpeg,
    decode_jpeg,
    encode_jpeg,
    encode_mask,
    read_annotation_mode,
    resize_mask_short_side,
    resize_short_side,
)
from components.data.mask_checks import check_same_mode, first_mask_missing
from components.data.palette import own_palette
from components.data.records import VideoRecord, object_ids_in
from components.errors import DataError
from components.storage import open_fs

JPEG_SUFFIXES = (".jpg", ".jpeg")


@dataclass(frozen=True)
class ReadOptions:
    """How a source encodes what it reads: optional downscale, and the JPEG quality used then."""

    short_side: int | None = None
    jpeg_quality: int = 90


class VideoSource(Protocol):
    """A readable dataset on disk (or any fsspec location): names first, then one video at a time."""

    kind: str
    location: str

    def list_videos(self) -> list[str]:
        """Names of the videos (or static items), sorted."""
        ...

    def read(self, name: str, options: ReadOptions) -> VideoRecord:
        """The checked record of one video; raises `DataError` naming the bad file."""
        ...


class Folder:
    """A directory on an fsspec filesystem, with the few listing and reading calls sources need."""

    def __init__(self, uri: str) -> None:
        self.uri = uri.rstrip("/") or "/"
        self.fs, self.path = open_fs(self.uri)

    def __getstate__(self) -> dict:
        return {"uri": self.uri}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["uri"])

    def require_dir(self) -> None:
        """Raise `DataError` unless the folder exists."""
        if not self.fs.isdir(self.path):
            raise DataError(f"{self.uri}: no such folder")

    def join(self, *parts: str) -> str:
        return posixpath.join(self.path, *parts)

    def shown(self, path: str) -> str:
        """The path as the user wrote it (protocol kept), for error messages."""
        rel = posixpath.relpath(path, self.path)
        return self.uri if rel == "." else f"{self.uri}/{rel}"

    def exists(self, path: str) -> bool:
        return self.fs.exists(path)

    def is_dir(self, path: str) -> bool:
        return self.fs.isdir(path)

    def entries(self, path: str) -> tuple[list[str], list[str]]:
        """(sub-directory names, file names) of `path`, both sorted; hidden entries skipped."""
        dirs, files = [], []
        for info in self.fs.ls(path, detail=True):
            name = posixpath.basename(info["name"].rstrip("/"))
            if name.startswith("."):
                continue
            (dirs if info["type"] == "directory" else files).append(name)
        return sorted(dirs), sorted(files)

    def read(self, path: str) -> bytes:
        with self.fs.open(path, "rb") as f:
            return f.read()


def stem_and_suffix(name: str) -> tuple[str, str]:
    stem, dot, suffix = name.rpartition(".")
    return (stem, f".{suffix.lower()}") if dot else (name, "")


def frame_files(folder: Folder, path: str) -> dict[str, str]:
    """Stem -> file name of the JPEG frames directly inside `path` (empty when `path` is missing)."""
    if not folder.exists(path):
        return {}
    return {stem: name for name in folder.entries(path)[1] for stem, sfx in [stem_and_suffix(name)] if sfx in JPEG_SUFFIXES}


def mask_files(folder: Folder, path: str) -> dict[str, str]:
    """Stem -> file name of the PNG masks directly inside `path`."""
    if not folder.exists(path):
        return {}
    return {stem: name for name in folder.entries(path)[1] for stem, sfx in [stem_and_suffix(name)] if sfx == ".png"}


def build_video(
    folder: Folder,
    name: str,
    frames_dir: str,
    masks_dir: str,
    options: ReadOptions,
    allowed_ids: set[int] | None = None,
    starts_at_first_mask: bool = False,
    extras: dict | None = None,
) -> VideoRecord:
    """Read, check and (optionally) resize one video whose frames and masks are matched by file stem.

    `allowed_ids`: the object ids the dataset declares (YouTube-VOS meta.json); when None, the ids of
    the first annotated mask are the palette, and any other id in a later mask is an error. The first
    frame must have a mask, unless `starts_at_first_mask` (YouTube-VOS with all frames stored: the
    video then starts at its first annotated frame). Masks must be all palette or all grayscale.
    """
    frames, masks = frame_files(folder, frames_dir), mask_files(folder, masks_dir)
    if not frames and not masks:
        raise DataError(f"{folder.shown(frames_dir)}: empty sequence (no JPEG frames and no masks)")
    orphans = sorted(set(masks) - set(frames))
    if orphans:
        raise DataError(f"{folder.shown(posixpath.join(masks_dir, masks[orphans[0]]))}: annotated frame without its image")
    stems = sorted(frames)
    if stems[0] not in masks:
        first = next((s for s in stems if s in masks), None)
        if first is None or not starts_at_first_mask:
            raise first_mask_missing(name, folder.shown(posixpath.join(masks_dir, f"{stems[0]}.png")),
                                     masks[first] if first is not None else None)
        stems = stems[stems.index(first):]
    blobs, size = [], None
    for stem in stems:
        path = posixpath.join(frames_dir, frames[stem])
        data = folder.read(path)
        this = check_jpeg(data, folder.shown(path))
        if size is not None and this != size:
            raise DataError(f"{folder.shown(path)}: frame size {this[1]}x{this[0]} differs from {size[1]}x{size[0]}")
        size = this
        blobs.append(data)
    annotated, mask_blobs, frame_objects = [], [], []
    palette = allowed_ids
    first_mode: tuple[str, str] | None = None
    extras = dict(extras or {})
    for index, stem in enumerate(stems):
        if stem not in masks:
            continue
        path = posixpath.join(masks_dir, masks[stem])
        shown = folder.shown(path)
        data = folder.read(path)
        ids, convention, mode = read_annotation_mode(data, shown)
        if first_mode is None and own_palette(data) is not None:
            extras["palette"] = own_palette(data)
        first_mode = first_mode or (shown, mode)
        check_same_mode(name, first_mode, (shown, mode))
        if ids.shape != size:
            raise DataError(f"{shown}: mask size {ids.shape[1]}x{ids.shape[0]} differs from its frame {size[1]}x{size[0]}")
        present = object_ids_in(ids)
        if palette is None and convention == "indexed":
            palette = set(present)
        stray = sorted(set(present) - palette) if convention == "indexed" else []
        if stray:
            raise DataError(
                f"{shown}: object ids {stray} are not in the palette {sorted(palette)} of the first annotated"
                " frame (anti-aliased edges?)"
            )
        if options.short_side:
            ids = resize_mask_short_side(ids, options.short_side)
            present = object_ids_in(ids)
        annotated.append(index)
        mask_blobs.append(encode_mask(ids))
        frame_objects.append(present)
    if options.short_side:
        blobs = [resized_jpeg(b, options) for b in blobs]
        size = check_jpeg(blobs[0], name) if blobs else size
    return VideoRecord(
        name=name,
        height=size[0],
        width=size[1],
        frame_names=stems,
        frames=blobs,
        annotated=annotated,
        masks=mask_blobs,
        frame_objects=frame_objects,
        annotation_interval=annotation_interval([stems[i] for i in annotated]),
        extras=extras,
    )


def annotation_interval(stems: list[str]) -> int:
    """Typical gap in frame numbers between consecutive annotated frames (YouTube-VOS: 5); 1 if unknown."""
    numbers = [int(s) for s in stems if s.isdigit()]
    gaps = [b - a for a, b in zip(numbers, numbers[1:]) if b > a]
    return max(1, int(statistics.median(gaps))) if gaps else 1


def resized_jpeg(data: bytes, options: ReadOptions) -> bytes:
    """`data` downscaled to `options.short_side` and re-encoded; the same bytes when already small enough."""
    rgb = decode_jpeg(data)
    small = resize_short_side(rgb, options.short_side or min(rgb.shape[:2]))
    return data if small is rgb else encode_jpeg(np.ascontiguousarray(small), options.jpeg_quality)
