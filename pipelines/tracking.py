"""MLflow helpers: absolute tracking URIs, experiments with a known artifact root, flat params, a run logger.

Nothing here touches MLflow's global "active run" state: every call names its run id, so Ray
workers, the stage driver and the DAG can log into the same run without stepping on each other.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any, Mapping

import cv2
import numpy as np
from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient

SECRET_PREFIXES = ("storage.options",)  # credentials and endpoints: never logged


def resolve_tracking_uri(uri: str) -> str:
    """Make a relative `sqlite:///path` absolute (Ray workers run in other directories) and create its folder."""
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        path = Path(uri[len("sqlite:///"):]).resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{path}"
    if uri.startswith("sqlite:////"):
        Path(uri[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    return uri


def default_artifact_root(tracking_uri: str, storage_root: str) -> str | None:
    """With a local SQLite store, keep artifacts beside the runs; a tracking server decides for itself."""
    if tracking_uri.startswith("sqlite:") or tracking_uri.startswith("file:"):
        if "://" in storage_root and not storage_root.startswith("file://"):
            return storage_root.rstrip("/") + "/mlartifacts"
        return Path(storage_root.removeprefix("file://")).resolve().joinpath("mlartifacts").as_uri()
    return None


def ensure_experiment(client: MlflowClient, name: str, artifact_root: str | None) -> str:
    """The id of experiment `name`, created (with `artifact_root`) when missing."""
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    return client.create_experiment(name, artifact_location=artifact_root)


def flatten_config(config: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Dotted keys -> string values, leaving out secrets (storage options)."""
    flat: dict[str, str] = {}
    for key, value in config.items():
        dotted = f"{prefix}{key}"
        if any(dotted == s or dotted.startswith(s + ".") for s in SECRET_PREFIXES):
            continue
        if isinstance(value, Mapping):
            flat.update(flatten_config(value, dotted + "."))
        else:
            flat[dotted] = str(value)
    return flat


class RunLogger:
    """Logs into one existing MLflow run by id (metrics in batches, params, images, files)."""

    def __init__(self, tracking_uri: str, run_id: str) -> None:
        self.client = MlflowClient(tracking_uri)
        self.run_id = run_id

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        now = int(time.time() * 1000)
        batch = [Metric(k, float(v), now, step) for k, v in metrics.items() if np.isfinite(v)]
        if batch:
            self.client.log_batch(self.run_id, metrics=batch)

    def log_params(self, params: Mapping[str, str]) -> None:
        items = [Param(k, v[:6000]) for k, v in params.items()]
        for start in range(0, len(items), 100):  # MLflow caps a batch at 100 params
            self.client.log_batch(self.run_id, params=items[start : start + 100])

    def set_tags(self, tags: Mapping[str, str]) -> None:
        for key, value in tags.items():
            self.client.set_tag(self.run_id, key, value)

    def log_image(self, image_rgb: np.ndarray, artifact_file: str) -> None:
        """Write an RGB uint8 image as PNG and log it at `artifact_file` (e.g. previews/step-100.png)."""
        folder, name = os.path.split(artifact_file)
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, name)
            cv2.imwrite(path, cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR))
            self.client.log_artifact(self.run_id, path, folder or None)

    def log_file(self, path: str | Path, artifact_dir: str | None = None) -> None:
        self.client.log_artifact(self.run_id, str(path), artifact_dir)

    def log_text(self, text: str, artifact_file: str) -> None:
        self.client.log_text(self.run_id, text, artifact_file)


def check_tracking_reachable(uri: str, timeout_s: float = 10.0) -> None:
    """Fail fast, in one line, on an http(s) tracking server that does not answer /health (MLflow retries for minutes)."""
    import urllib.error
    import urllib.request

    from components.errors import CorrvosError

    if not uri.startswith(("http://", "https://")):
        return
    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout_s):
            pass
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise CorrvosError(f"tracking server {uri} unreachable ({reason})") from None
