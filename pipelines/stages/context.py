"""What the engine hands a stage function: where to write, upstream outputs, and its MLflow run."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from components.config import CorrvosConfig
from components.config.schema import DatasetSource
from components.errors import CorrvosError
from pipelines.tracking import RunLogger


@dataclass(frozen=True)
class StageContext:
    """`out`: this stage's own folder URI; `inputs`: upstream stage name -> its outputs."""

    out: str
    inputs: dict[str, dict[str, str]]
    tracking_uri: str
    run_id: str
    parent_run_id: str | None = None
    storage_options: dict[str, Any] = field(default_factory=dict)
    progress: bool = True  # whether the stage may draw progress bars (`--no-progress` turns them off)

    @property
    def logger(self) -> RunLogger:
        return RunLogger(self.tracking_uri, self.run_id)


def datasets_with_role(config: CorrvosConfig, ingested: dict[str, str], role: str) -> list[str]:
    """URIs of the ingested datasets that serve `role`, in config order (skipped optional ones left out).

    For training roles a source with `repeat: n` is listed n times (the worker makes it one dataset
    whose videos enter each epoch n times).
    """
    uris = [uri for source, uri in named_datasets_with_role(config, ingested, role)
            for _ in range(source.repeat if role in ("pretrain", "train") else 1)]
    if role == "pretrain" and not uris:  # no static set named: pseudo-videos from the training videos
        return datasets_with_role(config, ingested, "train")
    if not uris:
        raise CorrvosError(f"pipeline.sources: no ingested dataset has role {role!r}")
    return uris


def named_datasets_with_role(config: CorrvosConfig, ingested: dict[str, str],
                             role: str) -> list[tuple[DatasetSource, str]]:
    """(source, URI) of each ingested dataset that serves `role`, in config order."""
    return [(s, ingested[s.name]) for s in config.pipeline.sources if role in s.roles and s.name in ingested]
