"""A cheap signature of each dataset source, so a changed or newly present folder re-runs `ingest`."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any


from components.config import DatasetSource
from components.storage import open_fs

MISSING = "missing"


def source_signature(source: DatasetSource, storage_options: dict[str, Any] | None = None) -> str:
    """Synthetic: the spec. A folder or URI: hash of every file's path, size and modification time."""
    if source.kind == "synthetic":
        return f"synthetic:{source.source}"
    if "://" not in source.source:
        return _local_signature(Path(source.source))
    fs, root = open_fs(source.source, storage_options)
    if not fs.exists(root):
        return MISSING
    digest = hashlib.sha256()
    for path, info in sorted(fs.find(root, detail=True).items()):
        digest.update(f"{path}\0{info.get('size')}\0{info.get('ETag') or info.get('mtime') or ''}\n".encode())
    return digest.hexdigest()[:16]


def source_present(source: DatasetSource, storage_options: dict[str, Any] | None = None) -> bool:
    """False for a source folder that does not exist (an `optional` one is then skipped)."""
    return source_signature(source, storage_options) != MISSING


def _local_signature(root: Path) -> str:
    if not root.exists():
        return MISSING
    digest = hashlib.sha256()
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            path = Path(folder, name)
            stat = path.stat()
            digest.update(f"{path.relative_to(root)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def init_signature(ref: str, storage_options: dict[str, Any] | None, tracking_uri: str) -> str:
    """What `pipeline.init_from` names, pinned: a registered model's version (an alias resolved now), a
    local file's sha256, a remote file's size and ETag/mtime. A missing one is a one-line error."""
    from components.errors import CorrvosError

    where = f"pipeline.init_from {ref!r}"
    if ref.startswith("models:/"):
        from pipelines.registry import registered_version

        return f"{ref} -> {registered_version(ref, tracking_uri)}"
    if "://" not in ref or ref.startswith("file://"):
        path = Path(ref.removeprefix("file://"))
        if not path.is_file():
            raise CorrvosError(f"{where}: file not found")
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        return f"sha256:{digest.hexdigest()}"
    fs, path = open_fs(ref, storage_options)
    if not fs.isfile(path):
        raise CorrvosError(f"{where}: file not found")
    info = fs.info(path)
    return f"{info.get('size')}:{info.get('ETag') or info.get('mtime') or ''}"
