"""What a researcher sees in MLflow, through a real (SQLite) store: the experiment's kind, dataset inputs, run names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from components.config import CorrvosConfig, config_from_dict
from components.data.config import IngestConfig
from components.data.ingest import ingest
from components.data.manifest import Manifest
from pipelines.dataset_inputs import CONTEXT_TAG, log_dataset_inputs
from pipelines.run_names import pipeline_run_name, trial_run_name
from pipelines.tracking import EXPERIMENT_KIND_TAG, ensure_experiment


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> MlflowClient:
    return MlflowClient(f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}")


@pytest.fixture(scope="module")
def datasets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, Manifest]]:
    """Two tiny ingested datasets: name -> (URI, manifest)."""
    root = tmp_path_factory.mktemp("data")
    out = {}
    for name, seed in (("synthetic-train", 0), ("synthetic-val", 2000)):
        uri = str(root / name)
        out[name] = (uri, ingest("synthetic", f"videos=2,frames=4,size=32,seed={seed}", uri,
                                 IngestConfig(engine="threads"), progress=False))
    return out


def test_a_new_experiment_opens_on_the_runs_table(client: MlflowClient) -> None:
    experiment = ensure_experiment(client, "fresh", None)
    assert client.get_experiment(experiment).tags[EXPERIMENT_KIND_TAG] == "custom_model_development"


def test_an_existing_experiment_is_marked_unless_a_person_chose_its_kind(client: MlflowClient) -> None:
    old = client.create_experiment("made-before")  # as corrvos made them before the tag
    inferred = client.create_experiment("inferred", tags={EXPERIMENT_KIND_TAG: "genai_development_inferred"})
    chosen = client.create_experiment("chosen", tags={EXPERIMENT_KIND_TAG: "genai_development"})
    assert ensure_experiment(client, "made-before", None) == old
    assert ensure_experiment(client, "inferred", None) == inferred
    assert ensure_experiment(client, "chosen", None) == chosen
    kinds = [client.get_experiment(e).tags[EXPERIMENT_KIND_TAG] for e in (old, inferred, chosen)]
    assert kinds == ["custom_model_development", "custom_model_development", "genai_development"]


def test_datasets_become_inputs_with_their_content_hash_source_and_role(client: MlflowClient, datasets) -> None:
    (train_uri, train), (val_uri, val) = datasets["synthetic-train"], datasets["synthetic-val"]
    run = client.create_run(ensure_experiment(client, "inputs", None)).info.run_id
    # a repeated source is one input; a dataset read in two roles names both
    log_dataset_inputs(client.tracking_uri, run, [(train_uri, "pretrain"), (train_uri, "train"), (train_uri, "train"),
                                                  (val_uri, "val")])
    inputs = {i.dataset.name: i for i in client.get_run(run).inputs.dataset_inputs}
    assert set(inputs) == {"synthetic-train", "synthetic-val"}
    for name, manifest, uri, role in (("synthetic-train", train, train_uri, "pretrain,train"),
                                      ("synthetic-val", val, val_uri, "val")):
        dataset, tags = inputs[name].dataset, {t.key: t.value for t in inputs[name].tags}
        assert tags == {CONTEXT_TAG: role}
        assert dataset.digest == manifest.content_hash[:36] and len(dataset.digest) == 36  # MLflow's limit
        assert json.loads(dataset.profile)["content_hash"] == manifest.content_hash
        assert json.loads(dataset.profile)["videos"] == 2
        assert json.loads(dataset.source) == {"uri": uri} and dataset.source_type == "local"
    assert train.content_hash != val.content_hash


def test_pipeline_run_name_says_model_loss_preset_and_seed() -> None:
    config = config_from_dict(CorrvosConfig, {"model": {"preset": "small"}, "loss": {"preset": "baseline"},
                                              "train": {"seed": 7}, "pipeline": {"name": "demo"}})
    assert pipeline_run_name(config) == "demo stcn-small baseline seed 7"
    config = config_from_dict(CorrvosConfig, {"model": {"preset": "xmem", "name": "xmem"}, "pipeline": {"name": "p"}})
    assert pipeline_run_name(config) == f"p xmem released seed {config.train.seed}"


def test_trial_run_name_shows_its_weights() -> None:
    overrides = {"loss.pcl_weight": 0.2134, "loss.ocl_weight": 0.05, "train.learning_rate": 0.000321,
                 "data.sampler.max_skip": 5}
    assert trial_run_name("a1b2c_00003", overrides) == "trial 3: pcl=0.213 ocl=0.05 lr=0.000321 max_skip=5"
    assert trial_run_name("a1b2c_00000", {}) == "trial 0"


def test_the_docs_runs_table_nests_stages_and_shows_their_datasets(client: MlflowClient, datasets, tmp_path) -> None:
    from tools.mlflow_runs_table import render, run_rows

    uri, manifest = datasets["synthetic-val"]
    experiment = ensure_experiment(client, "table", None)
    parent = client.create_run(experiment, run_name="demo stcn-small released seed 1").info.run_id
    child = client.create_run(experiment, run_name="evaluate", tags={"mlflow.parentRunId": parent}).info.run_id
    log_dataset_inputs(client.tracking_uri, child, [(uri, "test")])
    rows = run_rows(client, "table")
    assert [r[0] for r in rows] == ["demo stcn-small released seed 1", "    └ evaluate"]
    assert rows[1][2] == f"synthetic-val ({manifest.content_hash[:8]}) test" and rows[0][2] == "-"
    assert render(rows, "rendered", tmp_path / "table.png").stat().st_size > 0
