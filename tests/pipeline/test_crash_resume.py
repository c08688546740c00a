"""A pipeline killed during `train` (driver, Ray and all) and run again keeps ingest and pretrain.

After the kill, `status` says `train` was interrupted (its pid is gone); the rerun ends the killed
run's MLflow parent and child runs as KILLED and resumes `train` from its checkpoint. In the rerun a
Ray Train worker is SIGKILLed mid-stage: the stage is retried (`pipeline.stage_retries`), resumes
from a checkpoint, and no metric step is logged twice across the three attempts.
"""

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

from components.liveness import process_gone
from pipelines.dag.engine import KILLED_TAG
from pipelines.training.worker import RESUMES_TAG
from tests.pipeline.conftest import tiny_pipeline_yaml

pytestmark = [pytest.mark.slow, pytest.mark.ray]

TRAIN_ITERATIONS = 40  # enough steps that both kills land mid-stage however fast a step runs


def _descendants(root: int) -> list[int]:
    """Every process below `root` (the rerun's driver, its Ray, Ray's workers), from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_bytes()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat[stat.rfind(b")") + 2:].split()[1])
    found, frontier = [], [root]
    while frontier:
        children = [pid for pid, parent in parents.items() if parent in frontier]
        found.extend(children)
        frontier = children
    return found


def _ray_train_worker(root: int) -> int | None:
    for pid in _descendants(root):
        try:
            if Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"ray::RayTrainWorker"):
                return pid
        except OSError:
            continue
    return None


def _newest_checkpoint(train_root: Path) -> int:
    steps = [int(p.name.rsplit("-", 1)[1]) for p in train_root.glob("*/ray/train/checkpoint-*")]
    return max(steps, default=0)


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
            time.sleep(0.1)
        time.sleep(0.5)
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
        subprocess.run(["pkill", "-9", "-f", ray_tmp], check=False)
        shutil.rmtree(ray_tmp, ignore_errors=True)

    record = json.loads(next(train_root.glob("*/_RUNNING.json")).read_text())
    deadline = time.time() + 30  # Ray's workers exit once their raylet is gone; status must find the stage's dead
    while process_gone(record["host"], record["pid"]) is False and time.time() < deadline:
        time.sleep(0.2)
    status = subprocess.run(_corrvos("status", str(config)), capture_output=True, text=True, timeout=120)
    assert status.returncode == 0, status.stderr[-2000:]
    states = {line.split()[0]: line.split()[1] for line in status.stdout.splitlines()[2:]}
    assert states["ingest"] == "done" and states["pretrain"] == "done"
    assert states["train"] == "interrupted" and states["evaluate"] == "not"  # "interrupted (pid N gone)", "not started"

    summary_path, log = tmp_path / "second.json", tmp_path / "second.log"
    reached = _newest_checkpoint(train_root)  # the rerun resumes from here (or the one before)
    assert reached < TRAIN_ITERATIONS - 2, f"the first run got to step {reached}: nothing left to kill a worker in"
    ray_tmp = tempfile.mkdtemp(prefix="rc", dir="/tmp")
    with open(log, "wb") as output:
        second = subprocess.Popen(_corrvos("run", str(config), "--no-progress", "--summary-json", str(summary_path)),
                                  env={**os.environ, "RAY_TMPDIR": ray_tmp}, start_new_session=True,
                                  stdout=output, stderr=subprocess.STDOUT)
    killed = None
    try:
        deadline = time.time() + 300
        while killed is None and second.poll() is None and time.time() < deadline:
            if reached < _newest_checkpoint(train_root) < TRAIN_ITERATIONS:  # mid-stage, in the rerun
                killed = _ray_train_worker(second.pid)
                if killed is not None:
                    os.kill(killed, signal.SIGKILL)  # as Ray's memory monitor would
            time.sleep(0.2)
        second.wait(timeout=max(1.0, deadline + 300 - time.time()))
    finally:
        if second.poll() is None:
            os.killpg(second.pid, signal.SIGKILL)
            second.wait()
        subprocess.run(["pkill", "-9", "-f", ray_tmp], check=False)
        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert killed is not None, "no Ray Train worker was found to kill in the rerun"
    assert second.returncode == 0, log.read_text()[-3000:]
    summary = json.loads(summary_path.read_text())
    assert summary["stages"]["ingest"]["state"] == "reused"
    assert summary["stages"]["pretrain"]["state"] == "reused"
    assert summary["stages"]["train"]["state"] == "done"
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    train_run = summary["stages"]["train"]["mlflow_run_id"]
    resumed = sorted(client.get_metric_history(train_run, "resumed_from_step"), key=lambda m: m.timestamp)
    assert resumed and resumed[0].value >= 2, "train started over instead of resuming from its checkpoint"
    tags = client.get_run(train_run).data.tags
    assert tags.get("corrvos.resumed") == "true"
    # the killed worker: the stage ran again and resumed from a checkpoint, not from 0 (Ray Train registers a
    # checkpoint when its controller polls the workers, so one reported just before the kill may be lost)
    assert tags.get("corrvos.attempts") == "2" and tags.get("corrvos.retry_cause"), tags
    restarts = [int(step) for step in tags[RESUMES_TAG].split(",")]
    assert len(restarts) == 2 and min(restarts) > 0 and restarts[0] == resumed[0].value, restarts
    steps = sorted(m.step for m in client.get_metric_history(train_run, "total"))
    assert steps == list(range(1, TRAIN_ITERATIONS + 1)), f"metric steps logged twice or missing: {steps}"

    # the killed run's parent, and its child that was running, were ended as KILLED by the rerun
    parents = client.search_runs([client.get_run(train_run).info.experiment_id],
                                 filter_string="attributes.run_name LIKE 'crash stcn-small %'",  # the pipeline runs
                                 order_by=["attributes.start_time ASC"])
    assert [p.info.run_id for p in parents][-1] == summary["parent_run_id"] and len(parents) == 2
    assert parents[0].info.status == "KILLED" and KILLED_TAG in parents[0].data.tags
    assert parents[1].info.status == "FINISHED"
    assert KILLED_TAG in tags  # train was running when its driver died: killed, then resumed
