"""Stage retries: a stage that lost its process or a Ray Train worker runs again; one whose code raised does not.

The killed-worker case on a real Ray pipeline is in test_crash_resume.py (its second run).
"""

import pytest
import ray.exceptions
from mlflow.tracking import MlflowClient
from ray.train import WorkerGroupError
from ray.train.v2._internal.exceptions import WorkerHealthCheckFailedError

from components.config import CorrvosConfig, config_from_dict
from components.errors import ConfigError, DataError
from pipelines.dag import execute
from pipelines.dag.execute import StageGaveUp, execute_stage, is_retryable
from pipelines.dag.graph import StageNode
from pipelines.dag.records import FAILED, RUNNING, StageRecord, StageStore
from pipelines.training.stage import TrainingFailed
from pipelines.training.worker import InjectedFault


def _training_failed(worker_failures: dict) -> TrainingFailed:
    """What `run_training_stage` raises: TrainingFailed `from None` over Ray Train's WorkerGroupError."""
    try:
        try:
            raise WorkerGroupError("worker errors", worker_failures)
        except WorkerGroupError:
            raise TrainingFailed("stage train failed: ...") from None
    except TrainingFailed as exc:
        return exc


def _killed_worker() -> WorkerHealthCheckFailedError:
    return WorkerHealthCheckFailedError("A worker health check failed.", failure=ray.exceptions.ActorDiedError())


def test_lost_processes_are_retryable_and_stage_code_errors_are_not():
    assert is_retryable(_training_failed({0: _killed_worker()}))  # a Ray Train worker SIGKILLed (or OOM-killed)
    assert is_retryable(_training_failed({0: _killed_worker(), 1: RuntimeError("gloo: connection reset")}))
    assert is_retryable(ray.exceptions.WorkerCrashedError())
    assert is_retryable(ray.exceptions.NodeDiedError("node 1 died"))
    assert is_retryable(ray.exceptions.OutOfMemoryError("killed by the memory monitor"))
    assert not is_retryable(_training_failed({0: InjectedFault("fault injected at step 3")}))
    assert not is_retryable(_training_failed({0: DataError("manifest missing")}))
    assert not is_retryable(TrainingFailed("stage train finished without a checkpoint"))
    for error in (DataError("x"), ConfigError("x"), ValueError("x"), KeyboardInterrupt()):
        assert not is_retryable(error)
    assert not is_retryable(ray.exceptions.RayActorError(actor_init_failed=True))  # its constructor raised
    try:
        try:
            raise ray.exceptions.ActorDiedError()
        except ray.exceptions.ActorDiedError:
            raise DataError("bad video")  # raised while handling: its own error, not the lost actor
    except DataError as exc:
        assert not is_retryable(exc)


@pytest.fixture(scope="module")
def tracking_uri(tmp_path_factory) -> str:
    """One SQLite MLflow store for the module (creating its schema takes a second or two)."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow')}/mlflow.db"


@pytest.fixture
def stage_env(tmp_path, tracking_uri, monkeypatch):
    """A config, a `train` node and a stage function the test scripts (a real SQLite MLflow store)."""
    config = config_from_dict(CorrvosConfig, {
        "storage": {"root": str(tmp_path / "runs")},
        "tracking": {"mlflow_uri": tracking_uri},
    })
    node = StageNode("train", ("ingest",), "fp0")
    script: list[BaseException | None] = []
    calls: list[str] = []

    def scripted(config, context):
        calls.append(context.run_id)
        error = script.pop(0) if script else None
        if error is not None:
            raise error
        return {"model": "m"}

    monkeypatch.setattr(execute, "stage_functions", lambda: {"train": scripted})
    return config, node, script, calls


def test_a_stage_that_lost_a_worker_runs_again_in_the_same_run(stage_env):
    config, node, script, calls = stage_env
    script.append(_training_failed({0: _killed_worker()}))
    outcome = execute_stage(node, config, config.tracking.mlflow_uri, "parent", {}, progress=False, retries=1)
    assert outcome.state == "done" and len(calls) == 2 and calls[0] == calls[1] == outcome.mlflow_run_id
    run = MlflowClient(config.tracking.mlflow_uri).get_run(outcome.mlflow_run_id)
    assert run.info.status == "FINISHED" and run.data.tags["corrvos.attempts"] == "2"


def test_retries_run_out_and_stage_errors_are_not_retried(stage_env):
    config, node, script, calls = stage_env
    script.extend([_training_failed({0: _killed_worker()}), _training_failed({0: _killed_worker()})])
    with pytest.raises(TrainingFailed):
        execute_stage(node, config, config.tracking.mlflow_uri, "parent", {}, progress=False, retries=1)
    assert len(calls) == 2
    store = StageStore(f"{config.storage.root}/stages/train/fp0")
    assert store.read(FAILED).attempt == 2 and store.read(RUNNING) is None

    calls.clear()
    script[:] = [DataError("manifest missing")]
    with pytest.raises(DataError):
        execute_stage(node, config, config.tracking.mlflow_uri, "parent2", {}, progress=False, retries=3)
    assert len(calls) == 1


def test_a_ray_retry_of_the_stage_task_counts_against_the_same_budget(stage_env):
    config, node, _, calls = stage_env
    store = StageStore(f"{config.storage.root}/stages/train/fp0")
    # the task's process died on attempt 1 of this pipeline run: Ray runs it again, the stage resumes
    store.write(RUNNING, StageRecord("train", "fp0", "running", parent_run_id="parent", attempt=1))
    assert execute_stage(node, config, config.tracking.mlflow_uri, "parent", {}, progress=False, retries=1).state == "done"
    assert len(calls) == 1
    # it died on the last allowed attempt: one more Ray retry gives up at once, saying why
    store.remove("_SUCCESS.json")
    store.write(RUNNING, StageRecord("train", "fp0", "running", parent_run_id="parent", attempt=2))
    with pytest.raises(StageGaveUp, match="attempt 2 of 2"):
        execute_stage(node, config, config.tracking.mlflow_uri, "parent", {}, progress=False, retries=1)
    assert len(calls) == 1
    # a new pipeline run starts counting again
    assert execute_stage(node, config, config.tracking.mlflow_uri, "next", {}, progress=False, retries=1).state == "done"
