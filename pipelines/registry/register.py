"""Registering a checkpoint: a pyfunc model logged into a run and a new version, tagged with J&F and provenance.

A version serves exactly what it was scored with: `register_model` writes the inference and probe
settings of the evaluation (and the held-out set's version and J&F) into the registered checkpoint's
metadata, and the same values as version tags for the MLflow UI.
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from components.config import InferenceConfig, ProbeConfig, config_to_dict
from components.errors import CorrvosError
from components.model.checkpoint import ScoredSettings
from components.storage import open_fs, storage_errors
from pipelines.registry.client import (
    default_tracking_uri,
    ensure_registered_model,
    first_line,
    mlflow_call,
    registry_client,
)
from pipelines.registry.names import (
    EVAL_SET_TAG,
    INFERENCE_TAG,
    JF_TAG,
    MODEL_DIR,
    PROBE_TAG,
)
from pipelines.registry.pyfunc import save_pyfunc


@dataclass(frozen=True)
class RegisteredVersion:
    """A version of a registered model; `uri` is `models:/NAME/VERSION`."""

    name: str
    version: int
    uri: str


def settings_tags(settings: ScoredSettings) -> dict[str, str]:
    """The version tags that show stored settings in the MLflow UI (JSON, sorted keys)."""
    tags = {}
    if settings.inference is not None:
        tags[INFERENCE_TAG] = json.dumps(config_to_dict(settings.inference), sort_keys=True)
    if settings.probe is not None:
        tags[PROBE_TAG] = json.dumps(config_to_dict(settings.probe), sort_keys=True)
    return tags


def register_model(tracking_uri: str, name: str, weights_uri: str, run_id: str, jf: float,
                   tags: dict[str, str], storage_options: dict[str, Any] | None = None, *,
                   inference: InferenceConfig | None = None, probe: ProbeConfig | None = None) -> RegisteredVersion:
    """Log `weights_uri` as a pyfunc model into run `run_id` and make it a new version of `name`, tagged.

    `inference` / `probe` are the settings `jf` was measured with. They, the held-out set's version
    (tag `corrvos.eval_dataset_version` in `tags`) and `jf` are written into the registered
    checkpoint's metadata, which is what serving reads, and the settings also become version tags.
    """
    if not isinstance(jf, numbers.Real) or not math.isfinite(jf) or not 0.0 <= jf <= 1.0:
        raise CorrvosError(f"J&F {jf!r} for {name!r}: expected a number in [0, 1]")
    if not name or any(c in name for c in "/@:"):
        raise CorrvosError(f"registered model name {name!r}: must be non-empty, without '/', '@' or ':'")
    if not isinstance(inference, (InferenceConfig, type(None))) or not isinstance(probe, (ProbeConfig, type(None))):
        raise CorrvosError("register_model: inference and probe must be an InferenceConfig and a ProbeConfig")
    checked = _checked_tags(tags)
    settings = ScoredSettings(inference, probe, checked.get(EVAL_SET_TAG), float(jf))
    version_tags = {**checked, **settings_tags(settings), JF_TAG: repr(float(jf))}
    client = registry_client(tracking_uri)
    run = mlflow_call(lambda: client.get_run(run_id), f"run {run_id!r}")
    with tempfile.TemporaryDirectory(prefix="corrvos-register-") as folder:
        checkpoint = _fetch_checkpoint(weights_uri, Path(folder), storage_options)
        _stamp(checkpoint, settings, weights_uri)
        # the folder is named by the stamped file: the same weights scored with other settings never overwrite
        artifact_path = f"{MODEL_DIR}/{_file_digest(checkpoint)}"
        save_pyfunc(checkpoint, Path(folder, "model"), inference)
        created = ensure_registered_model(client, name)
        try:
            mlflow_call(lambda: client.log_artifacts(run_id, str(Path(folder, "model")), artifact_path),
                        f"run {run_id!r}")
            source = f"{run.info.artifact_uri.rstrip('/')}/{artifact_path}"
            version = mlflow_call(lambda: client.create_model_version(
                name, source, run_id=run_id, tags=version_tags, description=f"corrvos inference model, J&F {jf:.4f}"),
                f"registered model {name!r}")
        except BaseException:
            if created:
                client.delete_registered_model(name)  # leave no empty registered model behind
            raise
    return RegisteredVersion(name, int(version.version), f"models:/{name}/{version.version}")


def register_unscored(tracking_uri: str | None, name: str, weights_uri: str, tags: dict[str, str], *,
                      experiment: str, run_name: str, description: str) -> str:
    """A new version of `name` for a checkpoint nothing scored (an import): logged into a run of `experiment`
    tagged like the version, no J&F tags, no alias moved; returns `models:/NAME/VERSION`."""
    from pipelines.tracking import (
        default_artifact_root,
        ensure_experiment,
        resolve_tracking_uri,
    )

    uri = default_tracking_uri(resolve_tracking_uri(tracking_uri) if tracking_uri else None)
    client = registry_client(uri)
    # a SQLite store keeps the artifacts beside its database, as the pipeline's runs do
    root = default_artifact_root(uri, str(Path(uri[len("sqlite:///"):]).parent)) if uri.startswith("sqlite:") else None
    experiment_id = mlflow_call(lambda: ensure_experiment(client, experiment, root), f"experiment {experiment!r}")
    run = mlflow_call(lambda: client.create_run(experiment_id, tags=tags, run_name=run_name),
                      f"experiment {experiment!r}")
    with tempfile.TemporaryDirectory(prefix="corrvos-register-") as folder:
        checkpoint = _fetch_checkpoint(weights_uri, Path(folder), None)
        artifact_path = f"{MODEL_DIR}/{_file_digest(checkpoint)}"
        save_pyfunc(checkpoint, Path(folder, "model"))
        created = ensure_registered_model(client, name)
        try:
            mlflow_call(lambda: client.log_artifacts(run.info.run_id, str(Path(folder, "model")), artifact_path),
                        f"run {run.info.run_id!r}")
            source = f"{run.info.artifact_uri.rstrip('/')}/{artifact_path}"
            version = mlflow_call(lambda: client.create_model_version(name, source, run_id=run.info.run_id, tags=tags,
                                                                      description=description),
                                  f"registered model {name!r}")
        except BaseException:
            if created:
                client.delete_registered_model(name)
            raise
        finally:
            client.set_terminated(run.info.run_id)
    return f"models:/{name}/{version.version}"


def _checked_tags(tags: dict[str, str]) -> dict[str, str]:
    """String keys and values within MLflow's limits, checked before anything is written."""
    checked = {}
    for key, value in tags.items():
        if not isinstance(key, str) or not key or len(key) > 250 or not isinstance(value, str) or len(value) > 100_000:
            raise CorrvosError(f"version tag {str(key)[:60]!r}: keys and values must be strings "
                               "(key up to 250, value up to 100000 characters)")
        checked[key] = value
    return checked


def _fetch_checkpoint(weights_uri: str, folder: Path, storage_options: dict[str, Any] | None) -> Path:
    """Copy the checkpoint to `folder/model.pt` and check that it builds a corrvos model."""
    from components.model.checkpoint import load_inference_checkpoint

    local = folder / "model.pt"
    try:
        fs, path = open_fs(weights_uri, storage_options)
        with storage_errors(weights_uri, storage_options), fs.open(path, "rb") as handle:
            local.write_bytes(handle.read())
    except FileNotFoundError:
        raise CorrvosError(f"model {weights_uri!r}: file not found") from None
    except OSError as exc:
        raise CorrvosError(f"model {weights_uri!r}: cannot read ({first_line(exc)})") from None
    try:
        load_inference_checkpoint(str(local))
    except CorrvosError as exc:
        raise CorrvosError(str(exc).replace(str(local), weights_uri)) from None
    except (RuntimeError, KeyError, TypeError, ValueError) as exc:
        raise CorrvosError(f"model {weights_uri!r}: cannot load ({first_line(exc)})") from None
    return local


def _stamp(checkpoint: Path, settings: ScoredSettings, weights_uri: str) -> None:
    """Write `settings` into the local copy's metadata: the registered file describes how it was scored."""
    from components.model.checkpoint import stamp_checkpoint

    try:
        stamp_checkpoint(str(checkpoint), settings)
    except CorrvosError as exc:
        raise CorrvosError(str(exc).replace(str(checkpoint), weights_uri)) from None


def _file_digest(path: Path) -> str:
    """First 12 hex digits of the file's SHA-256: the same weights always land in the same run folder."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]
