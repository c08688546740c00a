"""Against real servers on 127.0.0.1, started here and stopped after: an `mlflow server` (SQLite backend)
whose artifacts are proxied to a `moto_server` S3 bucket. Register, promote and resolve go through HTTP,
and the weights must land in the bucket."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import boto3
import pytest
from mlflow.tracking import MlflowClient

from cluster.local import TEST_CREDENTIALS, Service, start_mlflow_server, start_moto_server
from components.model.checkpoint import SCORED_WITH
from pipelines.registry import promote, register_model, resolve_model_ref
from tests.registry.conftest import registered_payload, same_weights

pytestmark = pytest.mark.server

BUCKET = "registry-test"


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Service, Service]]:
    """(moto, mlflow), both stopped when the module's tests are done."""
    state = tmp_path_factory.mktemp("servers")
    moto = start_moto_server(state)
    try:
        mlflow_server = start_mlflow_server(state, moto.url, f"s3://{BUCKET}/artifacts")
        try:
            yield moto, mlflow_server
        finally:
            mlflow_server.stop()
    finally:
        moto.stop()


@pytest.mark.slow
def test_register_promote_and_resolve_through_a_tracking_server(servers, checkpoints, model_name, model_cache) -> None:
    moto, server = servers
    client = MlflowClient(server.url)
    run_id = client.create_run(client.create_experiment("registry-server-test")).info.run_id
    worse = register_model(server.url, model_name, str(checkpoints[1]), run_id, 0.40, {"corrvos.preset": "small"})
    best = register_model(server.url, model_name, str(checkpoints[0]), run_id, 0.70, {"corrvos.preset": "small"})
    assert (worse.version, best.version) == (1, 2)
    assert promote(server.url, model_name, best.version, 0.0).alias == "champion"
    assert promote(server.url, model_name, worse.version, 0.0).alias == "challenger"
    assert client.get_model_version(model_name, "2").tags["corrvos.jf"] == "0.7"

    local = resolve_model_ref(f"models:/{model_name}@champion", server.url)
    assert same_weights(Path(local), checkpoints[0]) and Path(local).is_relative_to(model_cache)

    s3 = boto3.client("s3", endpoint_url=moto.url, aws_access_key_id=TEST_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                      aws_secret_access_key=TEST_CREDENTIALS["AWS_SECRET_ACCESS_KEY"], region_name="us-east-1")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="artifacts/").get("Contents", [])]
    weights = [k for k in keys if run_id in k and k.endswith("/artifacts/model.pt")]
    assert len(weights) == 2, keys
    stored = [s3.get_object(Bucket=BUCKET, Key=k)["Body"].read() for k in weights]
    assert Path(local).read_bytes() in stored  # what was served is what the bucket holds
    jf = {registered_payload(blob)["metadata"][SCORED_WITH]["jf"]: blob for blob in stored}
    assert same_weights(jf[0.7], checkpoints[0]) and same_weights(jf[0.4], checkpoints[1])
    assert any(k.endswith("/MLmodel") for k in keys)
