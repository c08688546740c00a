"""`resolve_model_ref`: `models:/NAME/VERSION` and `models:/NAME@ALIAS` become a local checkpoint (downloaded
once into the cache); other refs pass through; unknown names, versions and aliases are one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from components.errors import CorrvosError
from components.model.checkpoint import SCORED_WITH, load_inference_checkpoint
from pipelines.registry import promote, register_model, resolve_model_ref
from tests.registry.conftest import registered_payload, same_weights


@pytest.fixture
def registered(store, checkpoints, new_run, model_name) -> str:
    """Two versions of `model_name` (v1 from checkpoint a, v2 from b), v2 the champion."""
    uri, _ = store
    run_id = new_run()
    register_model(uri, model_name, str(checkpoints[0]), run_id, 0.3, {})
    register_model(uri, model_name, str(checkpoints[1]), run_id, 0.4, {})
    promote(uri, model_name, 2, 0.0)
    return model_name


def test_versions_and_aliases_resolve_to_their_checkpoints(store, checkpoints, registered, model_cache) -> None:
    uri, _ = store
    by_alias = resolve_model_ref(f"models:/{registered}@champion", uri)
    by_version = resolve_model_ref(f"models:/{registered}/1", uri)
    assert Path(by_alias).is_relative_to(model_cache)
    for resolved, source in ((by_alias, checkpoints[1]), (by_version, checkpoints[0])):
        # the registered file is the source checkpoint plus what it was scored with in its metadata
        assert same_weights(Path(resolved), source)
        ours, theirs = registered_payload(Path(resolved)), registered_payload(source)
        assert ours["metadata"] == {**theirs["metadata"], SCORED_WITH: ours["metadata"][SCORED_WITH]}
    model, metadata = load_inference_checkpoint(by_alias)
    expected = torch.load(checkpoints[1], weights_only=True)["state_dict"]
    assert all(torch.equal(model.state_dict()[k], v) for k, v in expected.items()) and metadata
    assert metadata[SCORED_WITH]["jf"] == 0.4
    # a second resolve uses the cache: same path, nothing left half-downloaded beside it
    assert resolve_model_ref(f"models:/{registered}/2", uri) == by_alias
    assert not [p for p in model_cache.rglob(".download-*")]


def test_plain_paths_and_uris_pass_through_untouched(store) -> None:
    for ref in ("runs/train/model.pt", "/abs/model.pt", "s3://bucket/model.pt", "file:///x/model.pt"):
        assert resolve_model_ref(ref, None) == ref


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("models:/{name}@nope", "has no alias 'nope'"),
        ("models:/{name}/9", "has no version 9"),
        ("models:/missing-model/1", "'missing-model' has no version 1"),
        ("models:/missing-model@champion", "'missing-model' has no alias 'champion'"),
        ("models:/{name}", "expected models:/NAME/VERSION or models:/NAME@ALIAS"),
        ("models:/{name}/Production", "expected models:/NAME/VERSION"),
    ],
)
def test_unknown_refs_are_one_line_errors(store, registered, model_cache, ref, expected) -> None:
    uri, _ = store
    with pytest.raises(CorrvosError) as info:
        resolve_model_ref(ref.format(name=registered), uri)
    assert expected in str(info.value) and "\n" not in str(info.value)
    assert not model_cache.exists() or not any(model_cache.rglob("MLmodel"))


def test_a_missing_store_is_an_error_and_is_not_created(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CorrvosError, match="no such MLflow database"):
        resolve_model_ref("models:/m@champion", None)  # default: sqlite:///runs/mlflow.db
    with pytest.raises(CorrvosError, match="no such MLflow database"):
        resolve_model_ref("models:/m/1", f"sqlite:///{tmp_path / 'absent.db'}")
    assert not (tmp_path / "runs").exists() and not (tmp_path / "absent.db").exists()


def test_an_unreachable_tracking_server_fails_fast() -> None:
    from cluster.processes import free_port

    with pytest.raises(CorrvosError, match="unreachable"):
        resolve_model_ref("models:/m@champion", f"http://127.0.0.1:{free_port()}")
