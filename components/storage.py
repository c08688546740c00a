"""Small fsspec helpers: read a URI, write one atomically (temporary name, then move into place)."""

from __future__ import annotations

import uuid

import fsspec


def read_bytes(uri: str) -> bytes:
    """All bytes at a local path or fsspec URI; FileNotFoundError when absent."""
    with fsspec.open(uri, "rb") as handle:
        return handle.read()


def atomic_write_bytes(uri: str, data: bytes) -> None:
    """Write `data` to a temporary sibling of `uri`, then move it into place, so readers never see half a file."""
    fs, path = fsspec.core.url_to_fs(uri)
    parent = path.rsplit("/", 1)[0] if "/" in path else ""
    if parent:
        fs.makedirs(parent, exist_ok=True)
    temporary = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        with fs.open(temporary, "wb") as handle:
            handle.write(data)
        fs.mv(temporary, path)
    except BaseException:
        if fs.exists(temporary):
            fs.rm(temporary)
        raise
