"""Stage records on storage: `_RUNNING.json` while a stage runs, `_FAILED.json`, and `_SUCCESS.json` last.

A success record lists the stage's outputs; a cache hit is only trusted when those outputs still
exist (an artifact deleted behind the pipeline's back makes the stage run again). Every record names
the process that wrote it (the Ray worker running the stage) and the pipeline's driver, with their
hosts, so `corrvos status` can tell a running stage from one a kill -9 left behind.
"""

from __future__ import annotations

import datetime
import json
import os
from dataclasses import asdict, dataclass, field, fields
from typing import Any


from components.liveness import process_gone, this_host
from components.storage import atomic_write_bytes, read_bytes, open_fs

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
    host: str = ""  # the process that wrote the record (the stage's Ray worker), stamped by `StageStore.write`
    pid: int = 0
    driver_host: str = ""  # the `corrvos run` process that submitted the stage
    driver_pid: int = 0
    parent_run_id: str | None = None  # the pipeline run (MLflow parent) this attempt belongs to
    attempt: int = 1  # 1 + retries so far within that pipeline run


def running_state(record: StageRecord) -> str:
    """What `status` says of a `running` record: checked against its processes where this host can tell."""
    if process_gone(record.host, record.pid):
        return f"interrupted (pid {record.pid} gone)"
    if record.host == this_host():
        return "running"
    if process_gone(record.driver_host, record.driver_pid):
        return f"interrupted (driver pid {record.driver_pid} gone)"
    return f"running on {record.host} (pid {record.pid})" if record.host else "running"


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
        if not isinstance(data, dict):
            return None
        known = {f.name for f in fields(StageRecord)}
        try:
            return StageRecord(**{k: v for k, v in data.items() if k in known})  # fields a newer version added are ignored
        except TypeError:
            return None

    def write(self, name: str, record: StageRecord) -> StageRecord:
        stamped = StageRecord(**{**asdict(record), "at": _now(), "host": this_host(), "pid": os.getpid()})
        atomic_write_bytes(f"{self.folder}/{name}", json.dumps(asdict(stamped), indent=2).encode(), self.options)
        return stamped

    def remove(self, name: str) -> None:
        fs, path = open_fs(f"{self.folder}/{name}", self.options)
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
            fs, path = open_fs(value, storage_options)
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
