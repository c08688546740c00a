"""Fixtures for the tuning tests: the training tests' tiny dataset, plus validation videos (Ray: `local_ray`)."""

import pytest

from components.data.config import IngestConfig
from components.data.ingest import ingest
from tests.training.conftest import tiny_dataset  # noqa: F401  (a fixture, re-exported)


@pytest.fixture(scope="session")
def tiny_val_dataset(tmp_path_factory) -> str:
    out = str(tmp_path_factory.mktemp("val") / "synthetic-val")
    ingest("synthetic", "videos=3,frames=8,size=64,seed=1000", out, IngestConfig(engine="threads"), progress=False)
    return out
