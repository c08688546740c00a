"""Write video rows into Parquet shards, one row group per video (or per few small items).

A row group closes once it holds `row_group_bytes`, so a reader fetches one video with one ranged
read; a shard closes once it holds `shard_bytes`. Frames and masks are already compressed images,
so those columns are stored uncompressed and without dictionaries or statistics.

Each ingest writes into a fresh `parts-<UTC time>-<id>/` prefix that holds `_writer.json` (host, pid)
until the manifest references it. A prefix no manifest references is an orphan once its writer is
known dead (this host, pid gone) or it is older than `ORPHAN_AGE_S` (a writer elsewhere cannot be
checked); `sweep_orphan_prefixes` removes those and keeps any a live ingest may still be writing.
"""

from __future__ import annotations

import datetime
import json
import os
import posixpath
from typing import Any

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

from components.data.manifest import ShardEntry, VideoEntry
from components.data.records import SCHEMA
from components.liveness import process_gone, this_host

_BLOB_COLUMNS = ("frames", "masks")
PREFIX_START = "parts-"
PREFIX_TIME = "%Y%m%dT%H%M%S"
WRITER_RECORD = "_writer.json"
ORPHAN_AGE_S = 24 * 3600  # an unreferenced prefix this old is swept whatever its writer record says


def new_prefix_name(now: datetime.datetime, token: str) -> str:
    """`parts-<UTC time>-<token>`: the time in the name lets a later ingest judge its age on any storage."""
    return f"{PREFIX_START}{now.astimezone(datetime.timezone.utc):{PREFIX_TIME}}-{token}"


def claim_prefix(fs: fsspec.AbstractFileSystem, root: str, prefix: str) -> None:
    """Write `<prefix>/_writer.json` (this host and pid) before any shard, so a sweep can tell a live writer."""
    folder = posixpath.join(root, prefix)
    fs.makedirs(folder, exist_ok=True)
    with fs.open(posixpath.join(folder, WRITER_RECORD), "wb") as handle:
        handle.write(json.dumps({"host": this_host(), "pid": os.getpid()}).encode())


def release_prefix(fs: fsspec.AbstractFileSystem, root: str, prefix: str) -> None:
    """Drop the writer record of a prefix the manifest now references (best effort: a stray one is harmless)."""
    try:
        fs.rm(posixpath.join(root, prefix, WRITER_RECORD))
    except (FileNotFoundError, OSError):
        pass


def sweep_orphan_prefixes(fs: fsspec.AbstractFileSystem, root: str, keep: set[str],
                          now: datetime.datetime | None = None, max_age_s: float = ORPHAN_AGE_S) -> list[str]:
    """Remove the `parts-*` prefixes under `root` not in `keep` whose writer is dead or that are older than
    `max_age_s`; returns their names. A prefix whose writer may still run (alive here, or on another host
    and recent) is kept: a concurrent ingest of the same output must not lose its shards."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    fs.invalidate_cache(root)  # object stores cache listings; a stale one could hide an orphan
    try:
        entries = fs.ls(root, detail=False)
    except FileNotFoundError:
        return []
    removed = []
    for entry in entries:
        name = posixpath.basename(entry.rstrip("/"))
        if not name.startswith(PREFIX_START) or name in keep:
            continue
        folder = posixpath.join(root, name)
        if _writer_gone(fs, folder) or _age_s(name, now) > max_age_s:
            try:
                fs.rm(folder, recursive=True)
            except FileNotFoundError:
                pass
            removed.append(name)
    return removed


def _writer_gone(fs: fsspec.AbstractFileSystem, folder: str) -> bool:
    try:
        with fs.open(posixpath.join(folder, WRITER_RECORD), "rb") as handle:
            writer = json.loads(handle.read())
        return process_gone(str(writer["host"]), int(writer["pid"]))
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return False  # no record (written by an older version, or killed before writing it): age decides


def _age_s(name: str, now: datetime.datetime) -> float:
    """Seconds since the time in a prefix's name; -1 (never old) when the name holds none."""
    stamp = name[len(PREFIX_START):].split("-", 1)[0]
    try:
        started = datetime.datetime.strptime(stamp, PREFIX_TIME).replace(tzinfo=datetime.timezone.utc)
    except ValueError:
        return -1.0
    return (now - started).total_seconds()


class ShardWriter:
    """Appends rows in order; `close()` returns the shard list and the per-video index."""

    def __init__(self, fs: fsspec.AbstractFileSystem, root: str, prefix: str, shard_bytes: int, row_group_bytes: int) -> None:
        self.fs, self.root, self.prefix = fs, root, prefix
        self.shard_bytes, self.row_group_bytes = shard_bytes, row_group_bytes
        self.shards: list[ShardEntry] = []
        self.videos: list[VideoEntry] = []
        self._file: Any = None
        self._writer: pq.ParquetWriter | None = None
        self._pending: list[dict[str, Any]] = []
        self._pending_bytes = 0
        self._shard_bytes = 0
        self._shard_videos = 0
        self._row_groups = 0

    def add(self, row: dict[str, Any]) -> None:
        """Queue one row (a `VideoRecord.to_row()` dict); flushes row groups and shards as they fill."""
        size = sum(len(b) for column in _BLOB_COLUMNS for b in row[column])
        if self._pending and self._pending_bytes + size > self.row_group_bytes:
            self._flush_row_group()
        self.videos.append(
            VideoEntry(
                name=row["name"],
                shard=len(self.shards),
                row_group=self._row_groups,
                row=len(self._pending),
                frames=len(row["frames"]),
                annotated_frames=len(row["annotated"]),
                objects=len(row["object_ids"]),
                annotation_interval=row["annotation_interval"],
                digest=row["digest"],
            )
        )
        self._pending.append(row)
        self._pending_bytes += size

    def close(self) -> tuple[list[ShardEntry], list[VideoEntry]]:
        if self._pending:
            self._flush_row_group()
        self._close_shard()
        return self.shards, self.videos

    def abort(self) -> None:
        """Close any open file without finishing it (the caller removes the prefix)."""
        for thing in (self._writer, self._file):
            try:
                if thing is not None:
                    thing.close()
            except Exception:  # best effort while failing anyway
                pass
        self._writer = self._file = None

    def _flush_row_group(self) -> None:
        if self._writer is None:
            self._open_shard()
        table = pa.Table.from_pylist(self._pending, schema=SCHEMA)
        self._writer.write_table(table, row_group_size=len(self._pending))
        self._shard_bytes += self._pending_bytes
        self._shard_videos += len(self._pending)
        self._row_groups += 1
        self._pending, self._pending_bytes = [], 0
        if self._shard_bytes >= self.shard_bytes:
            self._close_shard()

    def _open_shard(self) -> None:
        folder = posixpath.join(self.root, self.prefix)
        self.fs.makedirs(folder, exist_ok=True)
        path = posixpath.join(folder, f"shard-{len(self.shards):05d}.parquet")
        self._file = self.fs.open(path, "wb")
        self._writer = pq.ParquetWriter(
            self._file,
            SCHEMA,
            compression={name: ("NONE" if name in _BLOB_COLUMNS else "ZSTD") for name in SCHEMA.names},
            use_dictionary=[n for n in SCHEMA.names if n not in _BLOB_COLUMNS],
            write_statistics=False,
        )

    def _close_shard(self) -> None:
        if self._writer is None:
            return
        self._writer.close()
        self._file.close()
        self.shards.append(
            ShardEntry(
                path=f"{self.prefix}/shard-{len(self.shards):05d}.parquet",
                videos=self._shard_videos,
                row_groups=self._row_groups,
                bytes=self._shard_bytes,
            )
        )
        self._writer = self._file = None
        self._shard_bytes = self._shard_videos = self._row_groups = 0
