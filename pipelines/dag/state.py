"""Per-pipeline state on storage: rerun generations and the last run's summary."""

from __future__ import annotations

import json
from typing import Any

from components.config import CorrvosConfig
from components.storage import atomic_write_bytes, read_bytes


class PipelineState:
    """`<storage.root>/pipelines/<pipeline.name>/`: generations.json and summary.json."""

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

    def _read(self, name: str) -> Any:
        try:
            return json.loads(read_bytes(f"{self.folder}/{name}", self.options))
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def _write(self, name: str, data: Any) -> None:
        atomic_write_bytes(f"{self.folder}/{name}", json.dumps(data, indent=2).encode(), self.options)
