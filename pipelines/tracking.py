"""MLflow helpers: absolute tracking URIs, experiments with a known artifact root (opening on the runs table), flat params, a run logger.

Nothing here touches MLflow's global "active run" state: every call names its run id, so Ray
workers, the stage driver and the DAG can log into the same run without stepping on each other.
A tracking URI never carries credentials past `resolve_tracking_uri`: `http://user:PASSWORD@host`
becomes `http://host` with MLflow's MLFLOW_TRACKING_USERNAME / _PASSWORD set in this process, and
every MLflow request has a bounded timeout and retry count (`MLFLOW_REQUEST_DEFAULTS`).
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

from components.secrets import SECRET_KEYS, redact_uri, split_credentials, take_uri_credentials

SECRET_PREFIXES = SECRET_KEYS  # credentials and endpoints: never logged
# MLflow's own defaults (120 s per request, 7 retries with backoff) keep a dead server busy for minutes;
# these bound one request at 20 s and a call to a silent server at ~40 s. A variable the user has set wins.
MLFLOW_REQUEST_DEFAULTS = {"MLFLOW_HTTP_REQUEST_TIMEOUT": "20", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1"}
# MLflow 3's experiment kind: which view the UI opens (model training: the runs table; GenAI: traces)
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
MODEL_TRAINING_KIND = "custom_model_development"
CHOSEN_KINDS = (MODEL_TRAINING_KIND, "genai_development")  # set by a person: left as they are


def bound_mlflow_requests() -> None:
    """Give MLflow's HTTP requests this process makes (and Ray workers it starts) `MLFLOW_REQUEST_DEFAULTS`."""
    for name, value in MLFLOW_REQUEST_DEFAULTS.items():
        os.environ.setdefault(name, value)


def resolve_tracking_uri(uri: str) -> str:
    """The URI to hand MLflow: credentials moved to MLflow's variables, a relative `sqlite:///path` made absolute.

    Ray workers run in other directories, so SQLite paths become absolute (their folder is created).
    """
    bound_mlflow_requests()
    uri = take_uri_credentials(uri)
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
    """The id of experiment `name`, created (with `artifact_root`) when missing, marked as model training.

    MLflow 3's UI opens an experiment without `mlflow.experimentKind` in its GenAI view (traces, no runs);
    the tag makes it open on the runs table. An existing experiment gets the tag unless someone chose a
    kind by hand (a value MLflow inferred, `*_inferred`, is replaced).
    """
    found = client.get_experiment_by_name(name)
    if found is None:
        return client.create_experiment(name, artifact_location=artifact_root,
                                        tags={EXPERIMENT_KIND_TAG: MODEL_TRAINING_KIND})
    if found.tags.get(EXPERIMENT_KIND_TAG) not in CHOSEN_KINDS:
        client.set_experiment_tag(found.experiment_id, EXPERIMENT_KIND_TAG, MODEL_TRAINING_KIND)
    return found.experiment_id


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
        bound_mlflow_requests()
        self.client = MlflowClient(take_uri_credentials(tracking_uri))
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
    """Fail fast, in one line, on an http(s) tracking server that does not answer /health (MLflow retries for minutes).

    Credentials (in the URI, or MLflow's variables) are sent as MLflow sends them; a server that refuses
    them is named as such. Messages show the URI without credentials.
    """
    import base64
    import urllib.error
    import urllib.request

    from components.errors import CorrvosError

    if not uri.startswith(("http://", "https://")):
        return
    clean, user, password = split_credentials(uri)
    user = user or os.environ.get("MLFLOW_TRACKING_USERNAME")
    password = password if password is not None else os.environ.get("MLFLOW_TRACKING_PASSWORD")
    headers = {}
    if user and password is not None:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    elif os.environ.get("MLFLOW_TRACKING_TOKEN"):
        headers["Authorization"] = f"Bearer {os.environ['MLFLOW_TRACKING_TOKEN']}"
    shown = redact_uri(clean)
    try:
        with urllib.request.urlopen(urllib.request.Request(clean.rstrip("/") + "/health", headers=headers),
                                    timeout=timeout_s):
            pass
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403):
            given = "refused the credentials given" if "Authorization" in headers else "requires credentials"
            raise CorrvosError(f"tracking server {shown} {given} (HTTP {exc.code}): put them in the URI "
                               "(http://USER:PASSWORD@host) or MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD") from None
        raise CorrvosError(f"tracking server {shown} answered /health with HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, TimeoutError):
            reason = f"no answer within {timeout_s:g} s"
        raise CorrvosError(f"tracking server {shown} unreachable ({reason})") from None
