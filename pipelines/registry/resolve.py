"""Resolving `models:/NAME/VERSION` and `models:/NAME@ALIAS` to a local checkpoint, downloaded once into a cache.

Serving reads the settings a version was scored with from that checkpoint, never from the version's
tags: `corrvos predict`, `corrvos probe` and the pipeline's `init_from` all come through here.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import mlflow.artifacts
from mlflow.exceptions import MlflowException

from components.errors import CorrvosError
from components.model.checkpoint import ScoredSettings, read_checkpoint_metadata
from pipelines.registry.client import (
    default_tracking_uri,
    get_alias,
    get_version,
    mlflow_call,
    registry_client,
)
from pipelines.registry.names import CACHE_ENV, CHECKPOINT_KEY

_REF = re.compile(r"^models:/(?P<name>[^@/]+)(?:/(?P<version>\d+)|@(?P<alias>[\w-]+))$")


@dataclass(frozen=True)
class ResolvedModel:
    """A model ref made local: the checkpoint to load and the settings it was scored with (from the file itself).

    `version_uri` is `models:/NAME/VERSION` for a registered model (an alias resolved), None for a path or URI.
    """

    ref: str
    checkpoint: str
    version_uri: str | None
    settings: ScoredSettings

    @property
    def source(self) -> str:
        """Where stored settings come from, in words: "registered with models:/NAME/3" or "stored in PATH"."""
        return f"registered with {self.version_uri}" if self.version_uri else f"stored in {self.ref}"


def resolve_model_ref(ref: str, tracking_uri: str | None, cache_dir: str | Path | None = None) -> str:
    """The local corrvos checkpoint behind `models:/NAME/VERSION` or `models:/NAME@ALIAS`; other refs unchanged."""
    if not ref.startswith("models:/"):
        return ref
    return _registered_checkpoint(ref, tracking_uri, cache_dir)[0]


def resolve_model(ref: str, tracking_uri: str | None, cache_dir: str | Path | None = None) -> ResolvedModel:
    """`ref` (a `models:/` ref, a path or an fsspec URI) as a local checkpoint plus the settings stored in it.

    The settings come from the checkpoint file, not from version tags; a plain checkpoint that was
    never registered has none (`ScoredSettings()`), and its users fall back to the defaults.
    """
    checkpoint, version_uri = locate_model(ref, tracking_uri, cache_dir)
    metadata = read_checkpoint_metadata(checkpoint)
    return ResolvedModel(ref, checkpoint, version_uri, ScoredSettings.from_metadata(metadata, f"model {ref!r}"))


def locate_model(ref: str, tracking_uri: str | None, cache_dir: str | Path | None = None) -> tuple[str, str | None]:
    """(checkpoint to load, `models:/NAME/VERSION`) for a registered ref (downloaded once); (ref, None) otherwise."""
    if ref.startswith("models:/"):
        return _registered_checkpoint(ref, tracking_uri, cache_dir)
    return ref, None


def download_model(ref: str, tracking_uri: str | None, cache_dir: str | Path | None = None) -> Path:
    """The pyfunc model folder of `models:/NAME/VERSION` or `models:/NAME@ALIAS`, downloaded once into a cache."""
    return _download(ref, tracking_uri, cache_dir)[0]


def registered_version(ref: str, tracking_uri: str | None) -> str:
    """`models:/NAME/VERSION` that `ref` names now (an alias resolved), without downloading anything."""
    match = _REF.match(ref)
    if match is None:
        raise CorrvosError(f"model {ref!r}: expected models:/NAME/VERSION or models:/NAME@ALIAS")
    client = registry_client(default_tracking_uri(tracking_uri))
    name = match["name"]
    found = get_alias(client, name, match["alias"]) if match["alias"] else get_version(client, name, int(match["version"]))
    return f"models:/{name}/{found.version}"


def _registered_checkpoint(ref: str, tracking_uri: str | None, cache_dir: str | Path | None) -> tuple[str, str]:
    """(local checkpoint path, `models:/NAME/VERSION`) of a registered ref."""
    model_dir, name, version = _download(ref, tracking_uri, cache_dir)
    try:
        from mlflow.models import Model

        artifacts = Model.load(str(model_dir)).flavors["python_function"]["artifacts"]
        checkpoint = model_dir / artifacts[CHECKPOINT_KEY]["path"]
    except (OSError, KeyError, TypeError, MlflowException):
        raise CorrvosError(f"model {ref!r}: not a corrvos registered model (no {CHECKPOINT_KEY} artifact)") from None
    if not checkpoint.is_file():
        raise CorrvosError(f"model {ref!r}: checkpoint {checkpoint} missing from the download")
    return str(checkpoint), f"models:/{name}/{version}"


def _download(ref: str, tracking_uri: str | None, cache_dir: str | Path | None) -> tuple[Path, str, int]:
    """(model folder, name, version number) of a registered ref, downloaded once into a cache."""
    match = _REF.match(ref)
    if match is None:
        raise CorrvosError(f"model {ref!r}: expected models:/NAME/VERSION or models:/NAME@ALIAS")
    tracking_uri = default_tracking_uri(tracking_uri)
    client = registry_client(tracking_uri)
    name = match["name"]
    if match["alias"]:
        found = get_alias(client, name, match["alias"])
    else:
        found = get_version(client, name, int(match["version"]))
    source = mlflow_call(lambda: client.get_model_version_download_uri(name, found.version), f"model {ref!r}")
    root = Path(cache_dir or os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "corrvos" / "models")
    target = root / hashlib.sha256(f"{tracking_uri}\n{source}".encode()).hexdigest()[:16] / f"{name}-v{found.version}"
    if (target / "MLmodel").is_file():
        return target, name, int(found.version)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".download-", dir=target.parent))
    try:
        downloaded = Path(mlflow_call(lambda: mlflow.artifacts.download_artifacts(
            artifact_uri=source, dst_path=str(staging), tracking_uri=tracking_uri), f"model {ref!r}"))
        if not (downloaded / "MLmodel").is_file():
            raise CorrvosError(f"model {ref!r}: no MLmodel file at {source}")
        try:
            os.replace(downloaded, target)
        except OSError:  # another process finished the same download first
            if not (target / "MLmodel").is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target, name, int(found.version)
