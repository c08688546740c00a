"""Shared fixtures for the Ray Train tests: a tiny synthetic dataset (the local Ray is `local_ray`, tests/conftest.py)."""

import json

import pytest
from ray.train import UserCallback

from components.config import CorrvosConfig, config_from_dict
from components.data.config import IngestConfig
from components.data.ingest import ingest


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> str:
    out = str(tmp_path_factory.mktemp("data") / "synthetic")
    ingest("synthetic", "videos=6,frames=10,size=64,seed=0", out, IngestConfig(engine="threads"), progress=False)
    return out


def tiny_config(tmp_path, **stage) -> CorrvosConfig:
    """`small` model, 64 px crops, a few iterations, MLflow in the test's folder."""
    section = {"preset": "demo", "iterations": 6, "batch_size": 2, "checkpoint_every": 2, "log_every": 1,
               "image_every": 3, "cpus_per_worker": 1, "max_failures": 1, **stage}
    return config_from_dict(CorrvosConfig, {
        "model": {"preset": "small"},
        "data": {"augment": {"crop_size": 64}, "static_augment": {"crop_size": 64}, "loader": {"num_workers": 1}},
        "pretrain": section,
        "train": section,
        "tracking": {"mlflow_uri": f"sqlite:///{tmp_path}/mlflow.db"},
        "storage": {"root": str(tmp_path / "runs")},
    })


class RecordReports(UserCallback):
    """Writes every worker's reported metrics, one JSON line per report, where the test can read them."""

    def __init__(self, path: str) -> None:
        self.path = path

    def after_report(self, run_context, metrics, checkpoint) -> None:
        with open(self.path, "a") as handle:
            handle.write(json.dumps(metrics) + "\n")
