"""`manifest.json`: what a dataset on storage holds, written last so its presence means "complete".

It records the schema version, the source, counts, the shard list, an index of where each video's
row lives (shard, row group, row) and the content hash (the dataset version), which depends only
on the videos' bytes and metadata, never on the time, the machine or how the work was split.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

import fsspec

from components.errors import DataError
from components.storage import open_fs

SCHEMA_VERSION = 1
MANIFEST_NAME = "manifest.json"


@dataclass(frozen=True)
class VideoEntry:
    """Where one video's row is, and enough about it to plan sampling without reading it."""

    name: str
    shard: int
    row_group: int
    row: int
    frames: int
    annotated_frames: int
    objects: int
    annotation_interval: int
    digest: str


@dataclass(frozen=True)
class ShardEntry:
    path: str  # relative to the dataset root
    videos: int
    row_groups: int
    bytes: int


@dataclass(frozen=True)
class Manifest:
    """The parsed manifest of one dataset."""

    source: dict[str, Any]
    options: dict[str, Any]
    shards: list[ShardEntry]
    videos: list[VideoEntry]
    skipped: list[dict[str, str]] = field(default_factory=list)
    created: str = ""
    schema_version: int = SCHEMA_VERSION

    @property
    def kind(self) -> str:
        return self.source["kind"]

    @property
    def counts(self) -> dict[str, int]:
        return {
            "videos": len(self.videos),
            "frames": sum(v.frames for v in self.videos),
            "annotated_frames": sum(v.annotated_frames for v in self.videos),
            "objects": sum(v.objects for v in self.videos),
        }

    @property
    def content_hash(self) -> str:
        """SHA-256 over the schema version and every (video name, video digest), in name order."""
        items = sorted((v.name, v.digest) for v in self.videos)
        return hashlib.sha256(json.dumps([SCHEMA_VERSION, items]).encode()).hexdigest()

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": self.schema_version,
            "content_hash": self.content_hash,
            "created": self.created,
            "source": self.source,
            "options": self.options,
            "counts": self.counts,
            "shards": [asdict(s) for s in self.shards],
            "skipped": self.skipped,
            "videos": [asdict(v) for v in self.videos],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], where: str) -> "Manifest":
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise DataError(f"{where}: schema version {version!r}, this corrvos reads {SCHEMA_VERSION}")
        try:
            manifest = cls(
                source=data["source"],
                options=data["options"],
                shards=[ShardEntry(**s) for s in data["shards"]],
                videos=[VideoEntry(**v) for v in data["videos"]],
                skipped=data.get("skipped", []),
                created=data.get("created", ""),
            )
        except (KeyError, TypeError) as exc:
            raise DataError(f"{where}: malformed manifest ({exc})") from None
        if data.get("content_hash") != manifest.content_hash:
            raise DataError(f"{where}: content hash does not match the videos it lists (edited or corrupt)")
        return manifest


def open_root(uri: str, storage_options: dict[str, Any] | None = None) -> tuple[fsspec.AbstractFileSystem, str]:
    """(filesystem, root path) of a dataset URI: a local path, `file://...` or `s3://bucket/prefix`."""
    fs, root = open_fs(uri, storage_options)
    return fs, root.rstrip("/")


def read_manifest(fs: fsspec.AbstractFileSystem, root: str, uri: str) -> Manifest | None:
    """The manifest at `root`, or None when there is none (no dataset, or an unfinished one)."""
    path = posixpath.join(root, MANIFEST_NAME)
    fs.invalidate_cache(root)
    if not fs.exists(path):
        return None
    try:
        with fs.open(path, "rb") as f:
            data = json.loads(f.read())
    except ValueError as exc:
        raise DataError(f"{uri}/{MANIFEST_NAME}: not valid JSON ({exc})") from None
    return Manifest.from_json(data, f"{uri}/{MANIFEST_NAME}")


def write_manifest(fs: fsspec.AbstractFileSystem, root: str, manifest: Manifest) -> None:
    """Write the manifest atomically: a single PUT on object stores, write-then-rename locally."""
    data = json.dumps(manifest.to_json(), indent=1).encode()
    path = posixpath.join(root, MANIFEST_NAME)
    if _is_local(fs):
        tmp = posixpath.join(root, f".{MANIFEST_NAME}.{uuid.uuid4().hex}.tmp")
        fs.pipe_file(tmp, data)
        fs.mv(tmp, path)
    else:
        fs.pipe_file(path, data)
    fs.invalidate_cache(root)


def _is_local(fs: fsspec.AbstractFileSystem) -> bool:
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    return protocol in ("file", "local")
