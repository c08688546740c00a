"""`corrvos import-weights`: official file in, corrvos checkpoint out (loadable, with provenance), errors in one line."""

from __future__ import annotations

import hashlib
import uuid

import pytest
import torch
from mlflow.tracking import MlflowClient

from components.model.checkpoint import load_inference_checkpoint
from components.model.imports import import_checkpoint
from pipelines.cli import main
from tests.imports.parity import load_fixture


@pytest.fixture(scope="module")
def official_file(tmp_path_factory):
    """The STCN fixture's seeded weights saved as a training checkpoint would be ({"network": module.*})."""
    path = tmp_path_factory.mktemp("official") / "stcn_checkpoint.pth"
    state = load_fixture("stcn").official_state
    torch.save({"it": 1, "network": {f"module.{k}": v for k, v in state.items()}}, path)
    return path


def test_import_writes_a_loadable_checkpoint_with_provenance(official_file, tmp_path, capsys):
    out = tmp_path / "model.pt"
    assert main(["import-weights", str(official_file), "--format", "stcn", "--out", str(out)]) == 0
    model, metadata = load_inference_checkpoint(str(out))
    expected = import_checkpoint(load_fixture("stcn").official_state, "stcn").state_dict
    assert all(torch.equal(model.state_dict()[k], v) for k, v in expected.items())
    info = metadata["imported_from"]
    assert info["format"] == "stcn"
    assert info["sha256"] == hashlib.sha256(official_file.read_bytes()).hexdigest()
    assert "folded 15" in " ".join(info["notes"])
    assert str(out) in capsys.readouterr().out


def test_a_missing_key_fails_in_one_line_and_writes_nothing(tmp_path, capsys):
    state = dict(load_fixture("stcn").official_state)
    del state["key_comp.bias"]
    source, out = tmp_path / "broken.pth", tmp_path / "model.pt"
    torch.save(state, source)
    assert main(["import-weights", str(source), "--format", "stcn", "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert "key_comp.bias" in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_a_pickled_object_is_refused_unrun(tmp_path, capsys):
    source = tmp_path / "evil.pth"
    torch.save({"network": {"w": torch.zeros(1)}, "obj": uuid.UUID(int=1)}, source)
    assert main(["import-weights", str(source), "--format", "stcn", "--out", str(tmp_path / "m.pt")]) == 1
    assert "refused" in capsys.readouterr().err


def test_register_creates_a_tagged_version(official_file, tmp_path, capsys):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    MlflowClient(uri).search_experiments()  # creates the store (import-weights never creates an empty one)
    out = tmp_path / "model.pt"
    assert main(["import-weights", str(official_file), "--format", "stcn", "--out", str(out),
                 "--register", "stcn-imported", "--tracking-uri", uri]) == 0
    assert capsys.readouterr().out.strip().endswith("models:/stcn-imported/1")
    version = MlflowClient(uri, registry_uri=uri).get_model_version("stcn-imported", "1")
    assert version.tags["corrvos.import.format"] == "stcn"
    assert version.tags["corrvos.import.sha256"] == hashlib.sha256(official_file.read_bytes()).hexdigest()
