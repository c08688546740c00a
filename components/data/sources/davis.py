"""DAVIS 2016 / 2017: `JPEGImages/[<resolution>/]<seq>/*.jpg` with `Annotations/[<resolution>/]<seq>/*.png`.

DAVIS 2016 masks are grayscale (255 = the object), DAVIS 2017 masks are indexed (palette index =
object id, 255 = void); `codec.read_annotation` tells them apart per file, and a sequence must not mix
them. Every sequence's first frame needs its mask. An optional split names
a file under `ImageSets/` (`train` finds `ImageSets/**/train.txt`) or is a path to a split file.
"""

from __future__ import annotations

import posixpath

from components.data.records import VideoRecord
from components.data.sources.base import Folder, ReadOptions, build_video, frame_files
from components.errors import DataError

DEFAULT_RESOLUTION = "480p"


class DavisSource:
    """Reader of a DAVIS-layout folder."""

    kind = "davis"

    def __init__(self, location: str, split: str | None = None, resolution: str | None = None) -> None:
        self.location = location
        self.folder = Folder(location)
        self.folder.require_dir()
        images, annotations = self.folder.join("JPEGImages"), self.folder.join("Annotations")
        if not (self.folder.is_dir(images) and self.folder.is_dir(annotations)):
            raise DataError(f"{location}: unknown layout (a DAVIS folder holds JPEGImages/ and Annotations/)")
        self.resolution = _pick_resolution(self.folder, images, resolution)
        level = (self.resolution,) if self.resolution else ()
        self.images_dir = posixpath.join(images, *level)
        self.annotations_dir = posixpath.join(annotations, *level)
        self.split = split
        self._names = self._select(split)

    def list_videos(self) -> list[str]:
        return list(self._names)

    def read(self, name: str, options: ReadOptions) -> VideoRecord:
        return build_video(
            self.folder,
            name,
            posixpath.join(self.images_dir, name),
            posixpath.join(self.annotations_dir, name),
            options,
        )

    def _select(self, split: str | None) -> list[str]:
        names = sorted(set(self.folder.entries(self.images_dir)[0]) | set(self.folder.entries(self.annotations_dir)[0]))
        if not names:
            raise DataError(f"{self.folder.shown(self.images_dir)}: no sequences found")
        if split is None:
            return names
        path = _split_file(self.folder, split, self.resolution)
        wanted = _parse_split(self.folder.read(path).decode())
        missing = [n for n in wanted if n not in names]
        if missing:
            raise DataError(f"{self.folder.shown(path)}: lists sequence {missing[0]!r}, which is not in JPEGImages/")
        if not wanted:
            raise DataError(f"{self.folder.shown(path)}: split file lists no sequences")
        return sorted(wanted)


def _pick_resolution(folder: Folder, images: str, wanted: str | None) -> str | None:
    """The resolution level to read, or None when sequences sit directly under JPEGImages/."""
    children = folder.entries(images)[0]
    if wanted is not None:
        if wanted not in children:
            raise DataError(f"{folder.shown(images)}: no resolution folder {wanted!r} (found {children})")
        return wanted
    if not children or any(frame_files(folder, posixpath.join(images, c)) for c in children[:3]):
        return None
    if DEFAULT_RESOLUTION in children:
        return DEFAULT_RESOLUTION
    if len(children) == 1:
        return children[0]
    raise DataError(f"{folder.shown(images)}: several resolutions {children}; choose one with --resolution")


def _split_file(folder: Folder, split: str, resolution: str | None) -> str:
    if split.endswith(".txt"):
        path = split if split.startswith(("/", folder.path)) else folder.join(split)
        if not folder.exists(path):
            raise DataError(f"{split}: split file not found")
        return path
    sets = folder.join("ImageSets")
    if not folder.is_dir(sets):
        raise DataError(f"{folder.shown(sets)}: split {split!r} asked but there is no ImageSets/ folder")
    found = sorted(p for p in folder.fs.find(sets) if posixpath.basename(p) == f"{split}.txt")
    if not found:
        raise DataError(f"{folder.shown(sets)}: no split file {split}.txt")
    # DAVIS 2017 ships ImageSets/2016 and ImageSets/2017; prefer the newest, then the resolution level
    for preferred in ("2017", resolution):
        for path in found:
            if preferred and posixpath.basename(posixpath.dirname(path)) == preferred:
                return path
    return found[0]


def _parse_split(text: str) -> list[str]:
    """Sequence names from a split file: one name a line (2017) or image/mask paths (2016)."""
    names: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        token = line.split()[0]
        name = posixpath.basename(posixpath.dirname(token)) if "/" in token else token
        if name not in names:
            names.append(name)
    return names
