"""The registry's MLflow client: one per call, named by its tracking URI, every failure one `CorrvosError`.

No global MLflow state is touched, so two stores can be used side by side in one process.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from components.errors import CorrvosError
from pipelines.tracking import check_tracking_reachable


def default_tracking_uri(tracking_uri: str | None) -> str:
    """The given URI, else $MLFLOW_TRACKING_URI, else the config default; a relative SQLite path made absolute."""
    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or "sqlite:///runs/mlflow.db"
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        return f"sqlite:///{Path(uri[len('sqlite:///'):]).resolve()}"
    return uri


def registry_client(tracking_uri: str) -> MlflowClient:
    """A client whose registry is the tracking store; a missing store or unreachable server fails fast, in one line."""
    check_tracking_reachable(tracking_uri)
    if tracking_uri.startswith("sqlite:///") and not Path(tracking_uri[len("sqlite:///"):]).is_file():
        raise CorrvosError(f"tracking store {tracking_uri}: no such MLflow database")  # never create an empty one
    return MlflowClient(tracking_uri, registry_uri=tracking_uri)


def mlflow_call(action: Callable[[], Any], what: str) -> Any:
    """Run one MLflow call; its failure becomes a one-line CorrvosError naming `what`."""
    try:
        return action()
    except (MlflowException, OSError) as exc:  # OSError: requests' connection errors, artifact stores
        raise CorrvosError(f"{what}: {first_line(exc)}") from None


def first_line(exc: Exception) -> str:
    """The first line of an exception's message (MLflow's can run to pages)."""
    text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return str(text).strip().splitlines()[0]


def ensure_registered_model(client: MlflowClient, name: str) -> bool:
    """Create registered model `name` when missing; True when this call created it."""
    try:
        client.get_registered_model(name)
        return False
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise CorrvosError(f"registered model {name!r}: {first_line(exc)}") from None
    mlflow_call(lambda: client.create_registered_model(name, description="corrvos video object segmentation models"),
                f"registered model {name!r}")
    return True


def get_version(client: MlflowClient, name: str, version: int) -> Any:
    """Version `version` of registered model `name`; a missing one is a `CorrvosError` saying so."""
    try:
        return client.get_model_version(name, str(int(version)))
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            raise CorrvosError(f"registered model {name!r} has no version {version}") from None
        raise CorrvosError(f"registered model {name!r} version {version}: {first_line(exc)}") from None


def get_alias(client: MlflowClient, name: str, alias: str) -> Any:
    """The version of `name` that carries `alias`; a missing alias is a `CorrvosError` saying so."""
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            raise CorrvosError(f"registered model {name!r} has no alias {alias!r}") from None
        raise CorrvosError(f"registered model {name!r} alias {alias!r}: {first_line(exc)}") from None
