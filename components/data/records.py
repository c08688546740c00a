"""`VideoRecord`: one video as stored, one Parquet row: encoded frames, encoded id masks, metadata.

Frames are JPEG bytes (the source's own bytes when not resized), masks are single-channel PNGs of
object ids (0 background, 255 void) for the annotated frames only. A static image-mask pair is a
one-frame video.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from components.data.codec import decode_jpeg, decode_mask

SCHEMA = pa.schema(
    [
        ("name", pa.string()),
        ("height", pa.int32()),
        ("width", pa.int32()),
        ("frame_names", pa.list_(pa.string())),
        ("frames", pa.list_(pa.binary())),
        ("annotated", pa.list_(pa.int32())),
        ("masks", pa.list_(pa.binary())),
        ("frame_objects", pa.list_(pa.list_(pa.int32()))),
        ("object_ids", pa.list_(pa.int32())),
        ("annotation_interval", pa.int32()),
        ("extras", pa.string()),
        ("digest", pa.string()),
    ]
)


@dataclass(frozen=True)
class VideoRecord:
    """One ingested video (or static image), with its frames and masks still encoded."""

    name: str
    height: int
    width: int
    frame_names: list[str]
    frames: list[bytes]  # JPEG, one per frame
    annotated: list[int]  # indices into `frames` that carry a mask, ascending
    masks: list[bytes]  # id PNGs, aligned with `annotated`
    frame_objects: list[list[int]]  # object ids present in each annotated mask
    annotation_interval: int = 1  # source frames between consecutive annotated frames (YouTube-VOS: 5)
    extras: dict[str, Any] = field(default_factory=dict)  # e.g. the synthetic generator's motion

    @property
    def num_frames(self) -> int:
        return len(self.frames)

    @property
    def object_ids(self) -> list[int]:
        """Every object id that appears in some annotated mask, ascending."""
        return sorted({i for ids in self.frame_objects for i in ids})

    def frame(self, index: int) -> np.ndarray:
        """Decoded RGB frame (H, W, 3) uint8."""
        return decode_jpeg(self.frames[index])

    def mask(self, index: int) -> np.ndarray:
        """Decoded id mask (H, W) uint8 of frame `index`, which must be annotated."""
        return decode_mask(self.masks[self.annotated.index(index)])

    def digest(self) -> str:
        """SHA-256 over the name, every frame and mask byte, and the metadata."""
        h = hashlib.sha256()
        meta = [self.name, self.height, self.width, self.frame_names, self.annotated, self.frame_objects,
                self.annotation_interval, self.extras]
        h.update(json.dumps(meta, sort_keys=True).encode())
        for blob in (*self.frames, *self.masks):
            h.update(len(blob).to_bytes(8, "little"))
            h.update(blob)
        return h.hexdigest()

    def to_row(self) -> dict[str, Any]:
        """The Parquet row (a dict matching `SCHEMA`)."""
        return {
            "name": self.name,
            "height": self.height,
            "width": self.width,
            "frame_names": self.frame_names,
            "frames": self.frames,
            "annotated": self.annotated,
            "masks": self.masks,
            "frame_objects": self.frame_objects,
            "object_ids": self.object_ids,
            "annotation_interval": self.annotation_interval,
            "extras": json.dumps(self.extras, sort_keys=True),
            "digest": self.digest(),
        }

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "VideoRecord":
        """Inverse of `to_row`."""
        return cls(
            name=row["name"],
            height=row["height"],
            width=row["width"],
            frame_names=list(row["frame_names"]),
            frames=list(row["frames"]),
            annotated=list(row["annotated"]),
            masks=list(row["masks"]),
            frame_objects=[list(ids) for ids in row["frame_objects"]],
            annotation_interval=row["annotation_interval"],
            extras=json.loads(row["extras"] or "{}"),
        )


def object_ids_in(mask: np.ndarray) -> list[int]:
    """Object ids present in an id mask (background 0 and void 255 excluded)."""
    counts = np.bincount(np.asarray(mask, dtype=np.uint8).ravel(), minlength=256)
    return [int(v) for v in np.flatnonzero(counts[1:255]) + 1]
