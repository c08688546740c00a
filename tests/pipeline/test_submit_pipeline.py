"""The pipeline submitted as a Ray Job to a `ray start --head` cluster, its storage on S3 and its
tracking on an MLflow server whose artifacts live on S3 too (moto): all started here on 127.0.0.1."""

import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from mlflow.tracking import MlflowClient

from cluster.local import up
from tests.pipeline.conftest import tiny_pipeline_yaml

pytestmark = [pytest.mark.slow, pytest.mark.ray, pytest.mark.server]

STAGES = {"ingest", "pretrain", "train", "evaluate", "register", "promote"}


@pytest.fixture()
def local_cluster(tmp_path):
    cluster = up(tmp_path / "cluster", num_cpus=2)
    try:
        yield cluster
    finally:
        cluster.stop()


def test_submitted_pipeline_tracks_every_stage_and_crowns_a_champion(tmp_path, local_cluster):
    config = tiny_pipeline_yaml(tmp_path, name="submitted", tracking={"mlflow_uri": local_cluster.mlflow.url},
                                storage={"root": f"s3://{local_cluster.bucket}/runs"})
    corrvos = str(Path(sys.executable).parent / "corrvos")
    job = subprocess.run([corrvos, "submit", str(config), "--address", local_cluster.ray.dashboard_url],
                         capture_output=True, text=True, timeout=900)
    assert job.returncode == 0, (job.stdout[-3000:], job.stderr[-2000:])
    assert "models:/corrvos-submitted@champion" in job.stdout  # the job's own report, followed live

    client = MlflowClient(local_cluster.mlflow.url)
    experiment = client.get_experiment_by_name("corrvos")
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if r.data.tags.get("corrvos.pipeline") == "submitted" and "corrvos.stage" not in r.data.tags]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    stages = {r.data.tags["corrvos.stage"]: r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id}
    assert set(stages) == STAGES and all(r.info.status == "FINISHED" for r in stages.values())
    champion = client.get_model_version_by_alias("corrvos-submitted", "champion")
    assert str(champion.version) == "1" and "corrvos.jf" in champion.tags

    s3 = boto3.client("s3", endpoint_url=local_cluster.s3.url, aws_access_key_id="testing",
                      aws_secret_access_key="testing", region_name="us-east-1")
    keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=local_cluster.bucket)
            for o in page.get("Contents", [])]
    assert any(k.startswith("mlflow-artifacts/") and k.endswith("model.pt") for k in keys), keys[:20]  # registered weights
    assert any(k.endswith("loss_curves.png") for k in keys)
    for stage in STAGES:  # every stage's success record, and the outputs, live under the S3 storage root
        assert any(k.startswith(f"runs/stages/{stage}/") and k.endswith("_SUCCESS.json") for k in keys), stage
    assert any(k.startswith("runs/stages/train/") and k.endswith("/model.pt") for k in keys)
    assert any(k.startswith("runs/stages/evaluate/") and k.endswith("/scores.json") for k in keys)
    assert any(k.startswith("runs/stages/evaluate/") and k.endswith("/probe/scores.json") for k in keys)
