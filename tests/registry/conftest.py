"""One SQLite MLflow store for the module's tests (creating one costs seconds), small random checkpoints,
and a fresh run per test; every test registers under its own model name."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any, Callable

import pytest
import torch
from mlflow.tracking import MlflowClient

from tests.evaluation.videos_util import save_small_checkpoint


@pytest.fixture(scope="session")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """(tracking URI, experiment id) of a SQLite store with artifacts in a local folder."""
    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    experiment = MlflowClient(uri).create_experiment("registry-tests", artifact_location=(root / "art").as_uri())
    return uri, experiment


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two different random `small` inference checkpoints."""
    folder = tmp_path_factory.mktemp("weights")
    return save_small_checkpoint(folder / "a.pt", seed=0), save_small_checkpoint(folder / "b.pt", seed=1)


@pytest.fixture
def new_run(store: tuple[str, str]) -> Callable[[], str]:
    """Creates a run in the store; returns its id."""
    uri, experiment = store
    return lambda: MlflowClient(uri).create_run(experiment).info.run_id


@pytest.fixture
def model_name() -> str:
    return f"corrvos-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture(autouse=True)
def model_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Downloads of registered models go to this test's folder, never to ~/.cache."""
    monkeypatch.setenv("CORRVOS_MODEL_CACHE", str(tmp_path / "model-cache"))
    return tmp_path / "model-cache"


PROVENANCE = {
    "corrvos.dataset_version": "data-1234",
    "corrvos.code_version": "0.1.0+abcdef123456",
    "corrvos.config": "runs:/RUN/config/resolved.yaml",
    "corrvos.preset": "model=small loss=released stage=train",
}


def registered_payload(blob: bytes | Path) -> dict[str, Any]:
    """The torch payload of a registered checkpoint (file or bytes)."""
    import io

    return torch.load(io.BytesIO(blob) if isinstance(blob, bytes) else blob, weights_only=True)


def same_weights(registered: bytes | Path, source: Path) -> bool:
    """The registered checkpoint holds exactly `source`'s model config and weights (its metadata gains settings)."""
    ours, theirs = registered_payload(registered), registered_payload(source)
    return (ours["model_config"] == theirs["model_config"] and ours["state_dict"].keys() == theirs["state_dict"].keys()
            and all(torch.equal(ours["state_dict"][k], v) for k, v in theirs["state_dict"].items()))
