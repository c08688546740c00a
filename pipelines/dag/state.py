"""Per-pipeline state on storage: rerun generations, the last run's summary, and the runs in progress.

`drivers/<parent run id>.json` names the `corrvos run` process (host, pid) of each pipeline run
while it runs; a run that finds one whose process is gone ends that run's MLflow runs as KILLED.
"""

from __future__ import annotations

import datetime
import json
import os
from dataclasses import asdict, dataclass
from typing import Any

import fsspec

from components.config import CorrvosConfig
from components.liveness import this_host
from components.storage import atomic_write_bytes, read_bytes


@dataclass(frozen=True)
class DriverRecord:
    """A pipeline run in progress: its MLflow parent run and the process driving it."""

    parent_run_id: str
    host: str
    pid: int
    started: str = ""


class PipelineState:
    """`<storage.root>/pipelines/<pipeline.name>/`: generations.json, summary.json and drivers/."""

    def __init__(self, config: CorrvosConfig) -> None:
        self.folder = f"{config.storage.root.rstrip('/')}/pipelines/{config.pipeline.name}"
        self.options = config.storage.options

    def generations(self) -> dict[str, int]:
        """How many times each stage was rerun by hand; part of its fingerprint."""
        return self._read("generations.json") or {}

    def bump(self, stage: str) -> int:
        generations = self.generations()
        generations[stage] = generations.get(stage, 0) + 1
        self._write("generations.json", generations)
        return generations[stage]

    def last_summary(self) -> dict[str, Any] | None:
        return self._read("summary.json")

    def save_summary(self, summary: dict[str, Any]) -> None:
        self._write("summary.json", summary)

    def register_driver(self, parent_run_id: str) -> DriverRecord:
        """Record that this process drives pipeline run `parent_run_id` (removed by `release_driver`)."""
        now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        record = DriverRecord(parent_run_id, this_host(), os.getpid(), now)
        self._write(f"drivers/{parent_run_id}.json", asdict(record))
        return record

    def release_driver(self, parent_run_id: str) -> None:
        fs, path = fsspec.core.url_to_fs(f"{self.folder}/drivers/{parent_run_id}.json", **self.options)
        try:
            fs.rm(path)
        except FileNotFoundError:
            pass

    def drivers(self) -> list[DriverRecord]:
        """Every recorded pipeline run in progress (or left behind by a killed driver); torn records skipped."""
        fs, path = fsspec.core.url_to_fs(f"{self.folder}/drivers", **self.options)
        try:
            names = [n for n in fs.ls(path, detail=False) if n.endswith(".json")]
        except FileNotFoundError:
            return []
        records = []
        for name in sorted(names):
            data = self._read(f"drivers/{name.rstrip('/').rsplit('/', 1)[-1]}")
            try:
                records.append(DriverRecord(**data))
            except TypeError:
                continue
        return records

    def _read(self, name: str) -> Any:
        try:
            return json.loads(read_bytes(f"{self.folder}/{name}", self.options))
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def _write(self, name: str, data: Any) -> None:
        atomic_write_bytes(f"{self.folder}/{name}", json.dumps(data, indent=2).encode(), self.options)
