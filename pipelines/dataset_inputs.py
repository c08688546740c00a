"""Ingested datasets as MLflow dataset inputs of the runs that read them, so the UI's Dataset column says which data.

A dataset input carries the dataset's name (its folder's name: the source's name in a pipeline), a
digest (the manifest's content hash, cut to MLflow's 36-character limit; the full hash is in the
profile), its URI as source, and the role it is read in as context (`pretrain`, `train`, `val`,
`test`). The `corrvos.dataset_version*` tags stay beside them.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Iterable
from typing import Any

from mlflow.entities import Dataset, DatasetInput, InputTag
from mlflow.tracking import MlflowClient

from components.data.dataset import VideoDataset
from components.data.manifest import Manifest
from components.secrets import redact_uri
from pipelines.tracking import bound_mlflow_requests

CONTEXT_TAG = "mlflow.data.context"  # MLflow's input tag for the role a dataset plays in a run
DIGEST_LIMIT = 36  # MLflow's maximum digest length


def dataset_entity(uri: str, manifest: Manifest) -> Dataset:
    """The MLflow dataset of an ingested dataset at `uri`: name, digest, source, and counts as its profile."""
    name = posixpath.basename(uri.rstrip("/")) or uri
    profile = {**manifest.counts, "kind": manifest.kind, "content_hash": manifest.content_hash}
    return Dataset(name=name, digest=manifest.content_hash[:DIGEST_LIMIT], source_type=source_type(uri),
                   source=json.dumps({"uri": redact_uri(uri)}), profile=json.dumps(profile))


def source_type(uri: str) -> str:
    """MLflow's source type for a URI: its scheme (s3, gs, ...), `local` for a path or file:// URI."""
    scheme = uri.split("://", 1)[0] if "://" in uri else "file"
    return "local" if scheme == "file" else scheme


def log_dataset_inputs(tracking_uri: str, run_id: str, datasets: Iterable[tuple[str, str]],
                       storage_options: dict[str, Any] | None = None) -> list[DatasetInput]:
    """Log each (dataset URI, role) as an input of run `run_id`; returns what was logged.

    A URI listed twice (a `repeat`ed source, or one with several roles) is one input whose context
    names its roles in order, e.g. `pretrain,train`: MLflow keeps one input per dataset and run.
    """
    roles: dict[str, list[str]] = {}
    for uri, role in datasets:
        if role not in roles.setdefault(uri, []):
            roles[uri].append(role)
    inputs = [DatasetInput(dataset_entity(uri, VideoDataset(uri, storage_options).manifest),
                           [InputTag(CONTEXT_TAG, ",".join(names))]) for uri, names in roles.items()]
    if inputs:
        bound_mlflow_requests()
        MlflowClient(tracking_uri).log_inputs(run_id, datasets=inputs)
    return inputs
