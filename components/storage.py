"""Small fsspec helpers: read a URI, write one atomically (temporary name, then move into place)."""

from __future__ import annotations

import io
import uuid
from typing import Any

import fsspec


def read_bytes(uri: str, storage_options: dict[str, Any] | None = None) -> bytes:
    """All bytes at a local path or fsspec URI; FileNotFoundError when absent."""
    with fsspec.open(uri, "rb", **(storage_options or {})) as handle:
        return handle.read()


def atomic_write_bytes(uri: str, data: bytes, storage_options: dict[str, Any] | None = None) -> None:
    """Write `data` to a temporary sibling of `uri`, then move it into place, so readers never see half a file."""
    fs, path = fsspec.core.url_to_fs(uri, **(storage_options or {}))
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


def load_torch(uri: str, what: str, error: type[Exception]) -> Any:
    """`torch.load` (weights only) of the file at `uri`; a missing or foreign file raises `error` naming `what` and `uri`."""
    import torch

    try:
        blob = read_bytes(uri)
    except FileNotFoundError:
        raise error(f"{what} {uri!r}: file not found") from None
    try:
        return torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for a truncated or foreign file
        raise error(f"{what} {uri!r}: not a torch file ({type(exc).__name__})") from None
