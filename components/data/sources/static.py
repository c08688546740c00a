"""Static image-mask pairs for pretraining, stored as one-frame videos.

Layouts: two sibling folders matched by file stem (DUTS `*-Image/` + `*-Mask/`, ECSSD `images/` +
`ground_truth_mask/`), or JPEGs next to same-stem PNG masks in one folder, possibly one folder per
class (FSS-1000). Salient-object masks are soft-edged, so they are thresholded at 128, not checked
for anti-aliasing; an image without its mask, or a mask with no foreground, is an error.
"""

from __future__ import annotations

import posixpath

from components.data.codec import check_jpeg, encode_mask, read_soft_mask, resize_mask_short_side
from components.data.records import VideoRecord, object_ids_in
from components.data.sources.base import JPEG_SUFFIXES, Folder, ReadOptions, resized_jpeg, stem_and_suffix
from components.errors import DataError


class StaticSource:
    """Reader of a folder of image-mask pairs; item names are `<folder>/<stem>` relative to the root."""

    kind = "static"

    def __init__(self, location: str) -> None:
        self.location = location
        self.folder = Folder(location)
        self.folder.require_dir()
        self._pairs = _two_folder_pairs(self.folder) or _same_folder_pairs(self.folder)
        if not self._pairs:
            raise DataError(f"{location}: unknown layout (no JPEG images with same-stem PNG masks found)")

    def list_videos(self) -> list[str]:
        return sorted(self._pairs)

    def read(self, name: str, options: ReadOptions) -> VideoRecord:
        image_path, mask_path = self._pairs[name]
        if mask_path is None:
            raise DataError(f"{self.folder.shown(image_path)}: image without its mask")
        data = self.folder.read(image_path)
        size = check_jpeg(data, self.folder.shown(image_path))
        shown_mask = self.folder.shown(mask_path)
        ids = read_soft_mask(self.folder.read(mask_path), shown_mask)
        if ids.shape != size:
            raise DataError(f"{shown_mask}: mask size {ids.shape[1]}x{ids.shape[0]} differs from its image {size[1]}x{size[0]}")
        if not ids.any():
            raise DataError(f"{shown_mask}: mask has no foreground")
        if options.short_side:
            data = resized_jpeg(data, options)
            ids = resize_mask_short_side(ids, options.short_side)
            size = ids.shape
        return VideoRecord(
            name=name,
            height=size[0],
            width=size[1],
            frame_names=[posixpath.basename(name)],
            frames=[data],
            annotated=[0],
            masks=[encode_mask(ids)],
            frame_objects=[object_ids_in(ids)],
        )


def _split(files: list[str]) -> tuple[dict[str, str], dict[str, str]]:
    images, masks = {}, {}
    for name in files:
        stem, suffix = stem_and_suffix(name)
        if suffix in JPEG_SUFFIXES:
            images[stem] = name
        elif suffix == ".png":
            masks[stem] = name
    return images, masks


def _two_folder_pairs(folder: Folder) -> dict[str, tuple[str, str | None]]:
    """Pairs from one folder of JPEGs and one sibling folder of PNGs sharing stems, else {}."""
    dirs, files = folder.entries(folder.path)
    if files and any(stem_and_suffix(f)[1] in JPEG_SUFFIXES for f in files):
        return {}
    listed = {d: _split(folder.entries(folder.join(d))[1]) for d in dirs}
    image_dirs = [d for d, (im, ma) in listed.items() if im and not ma]
    mask_dirs = [d for d, (im, ma) in listed.items() if ma and not im]
    for image_dir in image_dirs:
        for mask_dir in mask_dirs:
            images, masks = listed[image_dir][0], listed[mask_dir][1]
            if set(images) & set(masks):
                return {
                    stem: (folder.join(image_dir, images[stem]), folder.join(mask_dir, masks[stem]) if stem in masks else None)
                    for stem in images
                }
    return {}


def _same_folder_pairs(folder: Folder) -> dict[str, tuple[str, str | None]]:
    """Pairs of `x.jpg` + `x.png` in the same folder, anywhere below the root."""
    pairs: dict[str, tuple[str, str | None]] = {}
    found = sorted(folder.fs.find(folder.path))
    present = set(found)
    for path in found:
        stem, suffix = stem_and_suffix(posixpath.basename(path))
        if suffix not in JPEG_SUFFIXES:
            continue
        mask = posixpath.join(posixpath.dirname(path), f"{stem}.png")
        rel = posixpath.relpath(posixpath.join(posixpath.dirname(path), stem), folder.path)
        pairs[rel] = (path, mask if mask in present else None)
    return pairs
