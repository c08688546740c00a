"""The local cluster: up starts moto, MLflow and Ray; MLflow stores artifacts on moto's S3; down leaves nothing."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest
from mlflow.tracking import MlflowClient

from cluster import local
from cluster.processes import alive, group_members, processes_naming
from components.errors import CorrvosError
from tests.cluster.conftest import child_pids

pytestmark = [pytest.mark.ray, pytest.mark.server]  # `up` starts moto, MLflow and a Ray head


def _bucket_keys(endpoint: str, bucket: str) -> list[str]:
    s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing", aws_secret_access_key="testing",
                      region_name="us-east-1")
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


@pytest.mark.slow  # three servers up and down: ~45 s on 2 shared cores
def test_up_serves_mlflow_artifacts_on_s3_and_down_leaves_nothing_running(tmp_path: Path):
    state_dir = tmp_path / "cluster"
    cluster = local.up(state_dir, num_cpus=1)
    try:
        pids = {pid for s in cluster.services for pid in group_members(s.pid)}
        pids |= set(processes_naming(cluster.ray.temp_dir))
        assert len(pids) >= 5  # moto, mlflow (+ uvicorn), ray start, gcs, raylet, ...

        state = json.loads((state_dir / "services.json").read_text())
        assert [s["name"] for s in state["services"]] == ["s3", "mlflow", "ray"]
        env = dict(line.split("=", 1) for line in (state_dir / "env").read_text().splitlines())
        assert env["MLFLOW_TRACKING_URI"] == cluster.mlflow.url and env["RAY_ADDRESS"] == cluster.ray.url
        assert env["RAY_API_SERVER_ADDRESS"] == cluster.ray.dashboard_url

        with pytest.raises(CorrvosError, match="still running"):
            local.up(state_dir)

        # the client has no S3 credentials: the artifact goes through the server's proxy
        client = MlflowClient(cluster.mlflow.url)
        run = client.create_run(client.create_experiment("local-cluster-test"))
        artifact = tmp_path / "hello.txt"
        artifact.write_text("hello")
        client.log_artifact(run.info.run_id, str(artifact))
        keys = _bucket_keys(cluster.s3.url, cluster.bucket)
        assert any(k.endswith(f"{run.info.run_id}/artifacts/hello.txt") for k in keys), keys
    finally:
        stopped = local.down(state_dir)
    assert stopped == ["s3", "mlflow", "ray"]
    assert not [pid for pid in pids if alive(pid)]
    assert not processes_naming(cluster.ray.temp_dir)
    assert not (state_dir / "services.json").exists()
    assert local.down(state_dir) == []  # idempotent


def test_a_failed_start_stops_what_it_started_and_is_one_line(tmp_path: Path):
    before = child_pids()
    with pytest.raises(CorrvosError) as failure:
        local.up(tmp_path / "cluster", artifacts_destination="s3://Not_A_Valid_Bucket!/x")  # moto starts, mlflow cannot
    assert "\n" not in str(failure.value) and "Not_A_Valid_Bucket!" in str(failure.value)
    assert child_pids() - before == set()
    assert not (tmp_path / "cluster" / "services.json").exists()


def test_ray_temp_dir_is_short_enough_for_unix_sockets(tmp_path: Path):
    long_dir = tmp_path / ("x" * 80)
    temp_dir = local._ray_temp_dir(long_dir)
    try:
        assert len(temp_dir) <= local.MAX_RAY_TEMP_DIR and Path(temp_dir).is_dir()
    finally:
        Path(temp_dir).rmdir()


def test_command_line_down_without_a_cluster(tmp_path: Path):
    result = subprocess.run([sys.executable, "-m", "cluster.local", "down", "--state-dir", str(tmp_path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "nothing running" in result.stdout


def test_ray_processes_are_found_by_their_own_temp_dir_only(tmp_path: Path):
    def sleeper(arg: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", arg])

    ours = tmp_path / "ray"
    procs = [sleeper(f"--temp-dir={ours}"), sleeper(f"--session-dir={ours}/session_1"), sleeper(f"{ours}-other/x")]
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(processes_naming(str(ours))) < 2:
            time.sleep(0.1)
        assert sorted(processes_naming(str(ours))) == sorted(p.pid for p in procs[:2])  # not the sibling dir
    finally:
        for p in procs:
            p.kill()
            p.wait()
