"""YouTube-VOS: `<split>/JPEGImages/<vid>/`, `<split>/Annotations/<vid>/` and `<split>/meta.json`.

Annotations are sparse (every 5th frame in `train`, first appearances only in `valid`), objects may
first appear after frame 0, and `meta.json` declares each video's object ids: a mask holding any
other id is reported as anti-aliasing. A video's first mask is its first annotated frame: with all
frames stored (`*_all_frames`), frames before it carry no mask and the video starts there.

Outside `train` (the first-appearance layouts `valid` and `test`), `meta.json` also says which frames
the benchmark scores (the union of each object's `frames`): they are checked against the frames on disk
and kept in `extras["scored_frames"]` for the submission archive, and each object's first listed frame
must carry a mask that holds it.
"""

from __future__ import annotations

import dataclasses
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
            self._objects = {v: {int(k): [str(f) for f in obj.get("frames", [])] for k, obj in info.get("objects", {}).items()}
                             for v, info in videos.items()}
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
        self.meta_path = meta_path
        self.first_appearance_layout = posixpath.basename(self.split_dir.rstrip("/")) != "train"

    def list_videos(self) -> list[str]:
        return list(self._names)

    def read(self, name: str, options: ReadOptions) -> VideoRecord:
        objects = self._objects[name]
        record = build_video(
            self.folder,
            name,
            posixpath.join(self.images_dir, name),
            posixpath.join(self.annotations_dir, name),
            options,
            allowed_ids=set(objects),
            starts_at_first_mask=True,
        )
        if not self.first_appearance_layout:
            return record
        scored = self._check_first_appearances(record, objects)
        return dataclasses.replace(record, extras={**record.extras, "scored_frames": scored})

    def _check_first_appearances(self, record: VideoRecord, objects: dict[int, list[str]]) -> list[str]:
        """The frames meta.json asks for, sorted; each must exist and each object's first one must hold it."""
        name, meta = record.name, self.folder.shown(self.meta_path)
        position = {frame: i for i, frame in enumerate(record.frame_names)}
        held = dict(zip(record.annotated, record.frame_objects))
        if not objects:
            raise DataError(f"{meta}: video {name!r} declares no objects")
        for obj, frames in sorted(objects.items()):
            if not frames:
                raise DataError(f"{meta}: video {name!r} object {obj} lists no frames")
            missing = [f for f in frames if f not in position]
            if missing:
                raise DataError(f"{meta}: video {name!r} object {obj} lists frame {missing[0]!r}, which is not among "
                                f"its frames in {self.folder.shown(posixpath.join(self.images_dir, name))} "
                                "from the first mask on")
            first = min(frames, key=position.__getitem__)
            if obj not in held.get(position[first], []):
                mask = self.folder.shown(posixpath.join(self.annotations_dir, name, f"{first}.png"))
                raise DataError(f"{mask}: meta.json says object {obj} first appears in this frame, "
                                f"but {'the mask does not hold it' if position[first] in held else 'there is no mask'}")
        return sorted({f for frames in objects.values() for f in frames}, key=position.__getitem__)


def _split_dir(folder: Folder, split: str | None, needs: tuple[str, ...] = ("JPEGImages", "Annotations", "meta.json"),
               dataset: str = "YouTube-VOS") -> str:
    """The folder holding `needs` (JPEGImages/, Annotations/, meta.json): the location itself or its split."""
    def is_split(path: str) -> bool:
        return all(folder.exists(posixpath.join(path, p)) for p in needs)

    if split is None and is_split(folder.path):
        return folder.path
    candidates = [split] if split else [s for s in SPLITS if folder.is_dir(folder.join(s))]
    for name in candidates:
        if is_split(folder.join(name)):
            return folder.join(name)
    raise DataError(
        f"{folder.uri}: unknown layout ({dataset} needs train/ or valid/ with {', '.join(n + ('' if '.' in n else '/') for n in needs[:-1])}"
        f" and {needs[-1]}{'' if '.' in needs[-1] else '/'})"
    )
