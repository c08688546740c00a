"""MOSE: `<split>/JPEGImages/<vid>/*.jpg` with `<split>/Annotations/<vid>/*.png`, and no meta.json.

`train` annotates every frame; `valid` gives only each video's first mask, which must hold every
object (MOSE objects are all present in the first frame; the benchmark scores every frame). Masks
are indexed PNGs like DAVIS 2017; the first mask's ids are the video's objects.
"""

from __future__ import annotations

import posixpath

from components.data.records import VideoRecord
from components.data.sources.base import Folder, ReadOptions, build_video
from components.data.sources.youtube_vos import _split_dir
from components.errors import DataError


class MoseSource:
    """Reader of one MOSE split folder (or a dataset root holding `train/`/`valid/`)."""

    kind = "mose"

    def __init__(self, location: str, split: str | None = None) -> None:
        self.location = location
        self.folder = Folder(location)
        self.folder.require_dir()
        self.split_dir = _split_dir(self.folder, split, needs=("JPEGImages", "Annotations"), dataset="MOSE")
        self.images_dir = posixpath.join(self.split_dir, "JPEGImages")
        self.annotations_dir = posixpath.join(self.split_dir, "Annotations")
        names = sorted(set(self.folder.entries(self.images_dir)[0]) | set(self.folder.entries(self.annotations_dir)[0]))
        if not names:
            raise DataError(f"{self.folder.shown(self.images_dir)}: no videos found")
        self._names = names

    def list_videos(self) -> list[str]:
        return list(self._names)

    def read(self, name: str, options: ReadOptions) -> VideoRecord:
        masks_dir = posixpath.join(self.annotations_dir, name)
        record = build_video(self.folder, name, posixpath.join(self.images_dir, name), masks_dir, options)
        if not record.frame_objects[0]:
            first = self.folder.shown(posixpath.join(masks_dir, f"{record.frame_names[0]}.png"))
            raise DataError(f"{first}: the first mask holds no object")
        return record
