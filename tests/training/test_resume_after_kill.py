"""A stage killed mid-way (driver, Ray and all) and started again resumes from its checkpoint."""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from components.model.checkpoint import load_inference_checkpoint

pytestmark = [pytest.mark.slow, pytest.mark.ray]

ITERATIONS = 12


def _config_file(tmp_path: Path) -> Path:
    config = {
        "model": {"preset": "small"},
        "loss": {"preset": "released"},
        "data": {"augment": {"crop_size": 64}, "loader": {"num_workers": 1}},
        "train": {"preset": "demo", "iterations": ITERATIONS, "batch_size": 2, "checkpoint_every": 2,
                  "log_every": 1, "image_every": 100, "cpus_per_worker": 1},
        "tracking": {"mlflow_uri": f"sqlite:///{tmp_path}/mlflow.db"},
        "storage": {"root": str(tmp_path / "runs")},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _train_command(config: Path, dataset: str, out: Path) -> list[str]:
    corrvos = str(Path(sys.executable).parent / "corrvos")
    return [corrvos, "train", str(config), "--stage", "train", "--data", dataset, "--out", str(out)]


def _kill_session(process: subprocess.Popen, ray_tmp: str) -> None:
    """Kill the driver's process group and every Ray process of its private temp dir."""
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    subprocess.run(["pkill", "-9", "-f", ray_tmp], check=False)


def test_killed_stage_resumes_instead_of_starting_over(tmp_path, tiny_dataset):
    config = _config_file(tmp_path)
    out = tmp_path / "train-out"
    ray_tmp = tempfile.mkdtemp(prefix="rk", dir="/tmp")
    env = {**os.environ, "RAY_TMPDIR": ray_tmp}
    first = subprocess.Popen(_train_command(config, tiny_dataset, out), env=env, start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoint = out / "ray" / "train" / "checkpoint-00000004"
    deadline = time.time() + 240
    try:
        while not checkpoint.exists():
            assert first.poll() is None, "the first run ended before it could be killed"
            assert time.time() < deadline, "no checkpoint appeared within 4 minutes"
            time.sleep(0.5)
        time.sleep(1.0)  # let the checkpoint manager record it
    finally:
        _kill_session(first, ray_tmp)
        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert not (out / "model.pt").exists()

    second = subprocess.run(_train_command(config, tiny_dataset, out), capture_output=True, text=True, timeout=420)
    assert second.returncode == 0, second.stderr[-2000:]
    model, metadata = load_inference_checkpoint(str(out / "model.pt"))
    assert metadata["step"] == ITERATIONS
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("corrvos").experiment_id], order_by=["attributes.start_time ASC"])
    assert len(runs) == 2
    resumed = client.get_metric_history(runs[1].info.run_id, "resumed_from_step")
    # the newest checkpoint Ray had registered when the kill came: 2 or 4, never 0
    assert resumed and resumed[0].value >= 2 and resumed[0].value % 2 == 0, "the second run started over instead of resuming"
    steps = [m.step for m in client.get_metric_history(runs[1].info.run_id, "total")]
    assert min(steps) > resumed[0].value and max(steps) == ITERATIONS
