"""Stage records on storage: `_RUNNING.json` while a stage runs, `_FAILED.json`, and `_SUCCESS.json` last.

A success record lists the stage's outputs; a cache hit is only trusted when those outputs still
exist (an artifact deleted behind the pipeline's back makes the stage run again).
"""

from __future__ import annotations

import datetime
import json
import os
import socket
from dataclasses import asdict, dataclass, field
from typing import Any

import fsspec

from components.storage import atomic_write_bytes, read_bytes

SUCCESS, RUNNING, FAILED = "_SUCCESS.json", "_RUNNING.json", "_FAILED.json"


@dataclass(frozen=True)
class StageRecord:
    """What a stage left behind: its state, outputs, MLflow run and when."""

    stage: str
    fingerprint: str
    state: str  # done | running | failed
    outputs: dict[str, str] = field(default_factory=dict)
    mlflow_run_id: str | None = None
    error: str | None = None
    at: str = ""
    host: str = ""
    pid: int = 0


class StageStore:
    """Reads and writes the records of one stage folder (`<root>/stages/<stage>/<fingerprint>`)."""

    def __init__(self, folder: str, storage_options: dict[str, Any] | None = None) -> None:
        self.folder = folder.rstrip("/")
        self.options = storage_options or {}

    def read(self, name: str) -> StageRecord | None:
        try:
            data = json.loads(read_bytes(f"{self.folder}/{name}", self.options))
        except FileNotFoundError:
            return None
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None  # a torn or foreign record counts as absent
        return StageRecord(**data)

    def write(self, name: str, record: StageRecord) -> StageRecord:
        stamped = StageRecord(**{**asdict(record), "at": _now(), "host": socket.gethostname(), "pid": os.getpid()})
        atomic_write_bytes(f"{self.folder}/{name}", json.dumps(asdict(stamped), indent=2).encode(), self.options)
        return stamped

    def remove(self, name: str) -> None:
        fs, path = fsspec.core.url_to_fs(f"{self.folder}/{name}", **self.options)
        if fs.exists(path):
            fs.rm(path)

    def success(self) -> StageRecord | None:
        return self.read(SUCCESS)

    def current(self) -> StageRecord | None:
        """The most telling record: success, else running, else failed."""
        return self.read(SUCCESS) or self.read(RUNNING) or self.read(FAILED)


def outputs_exist(outputs: dict[str, str], storage_root: str, storage_options: dict[str, Any] | None,
                  tracking_uri: str | None) -> bool:
    """True when every stored output (a path under the storage root, or a models:/ URI) is still there."""
    for value in outputs.values():
        if value.startswith("models:/"):
            if not _model_version_exists(value, tracking_uri):
                return False
        elif value.startswith(storage_root.rstrip("/") + "/"):
            fs, path = fsspec.core.url_to_fs(value, **(storage_options or {}))
            if not fs.exists(path):
                return False
    return True


def _model_version_exists(uri: str, tracking_uri: str | None) -> bool:
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    reference = uri.removeprefix("models:/")
    try:
        if "@" in reference:
            name, _, alias = reference.partition("@")
            client.get_model_version_by_alias(name, alias)
        else:
            name, _, version = reference.partition("/")
            client.get_model_version(name, version)
    except MlflowException:
        return False
    return True


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
