"""YouTube-VOS: `<split>/JPEGImages/<vid>/`, `<split>/Annotations/<vid>/` and `<split>/meta.json`.

Annotations are sparse (every 5th frame in `train`, first appearances only in `valid`), objects may
first appear after frame 0, and `meta.json` declares each video's object ids: a mask holding any
other id is reported as anti-aliasing. A video's first mask is its first annotated frame: with all
frames stored (`*_all_frames`), frames before it carry no mask and the video starts there.
"""

from __future__ import annotations

import json
import posixpath

from components.data.records import VideoRecord
from components.data.sources.base import Folder, ReadOptions, build_video
from components.errors import DataError

SPLITS = ("train", "valid", "test")


class YoutubeVosSource:
    """Reader of one YouTube-VOS split folder (or a dataset root holding `train/`/`valid/`)."""

    kind = "youtube-vos"

    def __init__(self, location: str, split: str | None = None) -> None:
        self.location = location
        self.folder = Folder(location)
        self.folder.require_dir()
        self.split_dir = _split_dir(self.folder, split)
        meta_path = posixpath.join(self.split_dir, "meta.json")
        try:
            meta = json.loads(self.folder.read(meta_path))
            videos = meta["videos"]
            self._objects = {v: {int(k) for k in info.get("objects", {})} for v, info in videos.items()}
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise DataError(f"{self.folder.shown(meta_path)}: not a YouTube-VOS meta.json ({exc})") from None
        self.images_dir = posixpath.join(self.split_dir, "JPEGImages")
        self.annotations_dir = posixpath.join(self.split_dir, "Annotations")
        names = sorted(set(self.folder.entries(self.images_dir)[0]) | set(self.folder.entries(self.annotations_dir)[0]))
        unknown = [n for n in names if n not in self._objects]
        if unknown:
            raise DataError(f"{self.folder.shown(posixpath.join(self.images_dir, unknown[0]))}: video not listed in meta.json")
        if not names:
            raise DataError(f"{self.folder.shown(self.images_dir)}: no videos found")
        self._names = names

    def list_videos(self) -> list[str]:
        return list(self._names)

    def read(self, name: str, options: ReadOptions) -> VideoRecord:
        return build_video(
            self.folder,
            name,
            posixpath.join(self.images_dir, name),
            posixpath.join(self.annotations_dir, name),
            options,
            allowed_ids=self._objects[name],
            starts_at_first_mask=True,
        )


def _split_dir(folder: Folder, split: str | None) -> str:
    """The folder holding JPEGImages/, Annotations/ and meta.json."""
    def is_split(path: str) -> bool:
        return all(folder.exists(posixpath.join(path, p)) for p in ("JPEGImages", "Annotations", "meta.json"))

    if split is None and is_split(folder.path):
        return folder.path
    candidates = [split] if split else [s for s in SPLITS if folder.is_dir(folder.join(s))]
    for name in candidates:
        if is_split(folder.join(name)):
            return folder.join(name)
    raise DataError(
        f"{folder.uri}: unknown layout (YouTube-VOS needs train/ or valid/ with JPEGImages/, Annotations/ and meta.json)"
    )
