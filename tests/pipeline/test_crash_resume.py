"""A pipeline killed during `train` (driver, Ray and all) and run again keeps ingest and pretrain."""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.pipeline.conftest import tiny_pipeline_yaml

pytestmark = [pytest.mark.slow, pytest.mark.ray]

TRAIN_ITERATIONS = 16


def _corrvos(*args: str) -> list[str]:
    return [str(Path(sys.executable).parent / "corrvos"), *args]


def test_killed_pipeline_resumes_at_train(tmp_path):
    config = tiny_pipeline_yaml(tmp_path, name="crash", train={"iterations": TRAIN_ITERATIONS})
    ray_tmp = tempfile.mkdtemp(prefix="rc", dir="/tmp")
    first = subprocess.Popen(_corrvos("run", str(config), "--no-progress"), env={**os.environ, "RAY_TMPDIR": ray_tmp},
                             start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    train_root = tmp_path / "runs" / "stages" / "train"
    deadline = time.time() + 300
    try:
        while not list(train_root.glob("*/ray/train/checkpoint-00000004")):
            assert first.poll() is None, "the pipeline ended before it could be killed"
            assert time.time() < deadline, "train wrote no checkpoint within 5 minutes"
            time.sleep(0.5)
        time.sleep(1.0)
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
        subprocess.run(["pkill", "-9", "-f", ray_tmp], check=False)
        shutil.rmtree(ray_tmp, ignore_errors=True)

    status = subprocess.run(_corrvos("status", str(config)), capture_output=True, text=True, timeout=120)
    assert status.returncode == 0, status.stderr[-2000:]
    states = {line.split()[0]: line.split()[1] for line in status.stdout.splitlines()[2:]}
    assert states["ingest"] == "done" and states["pretrain"] == "done"
    assert states["train"] == "running" and states["evaluate"] == "not"  # "not started"

    summary_path = tmp_path / "second.json"
    second = subprocess.run(_corrvos("run", str(config), "--no-progress", "--summary-json", str(summary_path)),
                            capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    summary = json.loads(summary_path.read_text())
    assert summary["stages"]["ingest"]["state"] == "reused"
    assert summary["stages"]["pretrain"]["state"] == "reused"
    assert summary["stages"]["train"]["state"] == "done"
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    train_run = summary["stages"]["train"]["mlflow_run_id"]
    resumed = client.get_metric_history(train_run, "resumed_from_step")
    assert resumed and resumed[0].value >= 2, "train started over instead of resuming from its checkpoint"
    assert client.get_run(train_run).data.tags.get("corrvos.resumed") == "true"
    assert max(m.step for m in client.get_metric_history(train_run, "total")) == TRAIN_ITERATIONS
