"""Run one stage durably: reuse a verified success record, else run it in its MLflow child run.

A stage that crashed (its `_RUNNING.json` or `_FAILED.json` is there) runs again in the same
MLflow run and the same folder, so a training stage resumes from its own checkpoints. A stage given
`retries` is run again, the same way, when it dies of a cause that another attempt can survive (a Ray
worker, actor or node lost, an OOM kill), never when its own code raised.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Callable

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from components.config import CorrvosConfig
from components.errors import CorrvosError
from pipelines.dag.graph import StageNode
from pipelines.dag.records import FAILED, RUNNING, SUCCESS, StageRecord, StageStore, outputs_exist
from pipelines.stages.context import StageContext
from pipelines.tracking import default_artifact_root, ensure_experiment

StageFunction = Callable[[CorrvosConfig, StageContext], dict[str, str]]


@dataclass(frozen=True)
class StageOutcome:
    """How a stage ended in this pipeline run: `done` (ran now) or `reused` (an earlier success)."""

    name: str
    state: str
    fingerprint: str
    folder: str
    outputs: dict[str, str] = field(default_factory=dict)
    mlflow_run_id: str | None = None


def stage_functions() -> dict[str, StageFunction]:
    """Stage name -> function; imported lazily so planning and `status` need no torch."""
    from pipelines.stages.evaluate import run_evaluate
    from pipelines.stages.ingest import run_ingest
    from pipelines.stages.registry import run_promote, run_register
    from pipelines.stages.training import run_pretrain, run_train
    from pipelines.stages.tune import run_tune_stage

    return {"ingest": run_ingest, "pretrain": run_pretrain, "tune": run_tune_stage, "train": run_train,
            "evaluate": run_evaluate, "register": run_register, "promote": run_promote}


def stage_folder(config: CorrvosConfig, node: StageNode) -> str:
    return f"{config.storage.root.rstrip('/')}/stages/{node.name}/{node.fingerprint}"


class StageGaveUp(CorrvosError):
    """A retried stage was started again (by Ray, after its process died) with no attempt left."""


@dataclass(frozen=True)
class Driver:
    """The `corrvos run` process that submitted a stage, recorded beside the stage's own process."""

    host: str = ""
    pid: int = 0


def execute_stage(node: StageNode, config: CorrvosConfig, tracking_uri: str, parent_run_id: str | None,
                  inputs: dict[str, dict[str, str]], progress: bool = True, retries: int = 0,
                  driver: Driver = Driver()) -> StageOutcome:
    """Reuse the stage's verified outputs or run it; records `_SUCCESS.json` last. `progress`: the
    stage may draw progress bars; `retries`: attempts allowed after a retryable death (`is_retryable`),
    counted across this pipeline run, a Ray retry of the stage task included."""
    folder = stage_folder(config, node)
    options = config.storage.options
    store = StageStore(folder, options)
    success = store.success()
    if success is not None:
        if outputs_exist(success.outputs, config.storage.root, options, tracking_uri):
            return StageOutcome(node.name, "reused", node.fingerprint, folder, success.outputs, success.mlflow_run_id)
        store.remove(SUCCESS)  # an output was deleted behind our back: run the stage again
    client = MlflowClient(tracking_uri)
    earlier = store.read(RUNNING) or store.read(FAILED)
    run_id = earlier.mlflow_run_id if earlier and _run_exists(client, earlier.mlflow_run_id) else None
    if run_id is None:
        run_id = _child_run(client, tracking_uri, config, node, parent_run_id)
    else:
        client.update_run(run_id, status="RUNNING")
        client.set_tag(run_id, "corrvos.resumed", "true")
    attempt = 1
    if earlier is not None and parent_run_id and earlier.parent_run_id == parent_run_id:
        attempt = earlier.attempt + 1  # Ray retried this task after its process died
    context = StageContext(folder, inputs, tracking_uri, run_id, parent_run_id, dict(options), progress)
    while True:
        running = StageRecord(node.name, node.fingerprint, "running", mlflow_run_id=run_id, driver_host=driver.host,
                              driver_pid=driver.pid, parent_run_id=parent_run_id, attempt=attempt)
        store.write(RUNNING, running)
        if attempt > 1:
            client.set_tag(run_id, "corrvos.attempts", str(attempt))
        try:
            if attempt > retries + 1:
                raise StageGaveUp(f"stage {node.name}: its process died on attempt {attempt - 1} of {retries + 1}")
            outputs = stage_functions()[node.name](config, context)
            break
        except BaseException as exc:
            if attempt <= retries and is_retryable(exc):
                print(f"stage {node.name}: attempt {attempt} of {retries + 1} lost ({_first_line(exc)}); "
                      "running it again from its checkpoint", file=sys.stderr, flush=True)
                client.set_tag(run_id, "corrvos.retry_cause", _first_line(exc))
                client.update_run(run_id, status="RUNNING")
                attempt += 1
                continue
            store.write(FAILED, StageRecord(node.name, node.fingerprint, "failed", mlflow_run_id=run_id,
                                            error=_first_line(exc), driver_host=driver.host, driver_pid=driver.pid,
                                            parent_run_id=parent_run_id, attempt=attempt))
            store.remove(RUNNING)
            client.set_terminated(run_id, status="FAILED")
            raise
    store.write(SUCCESS, StageRecord(node.name, node.fingerprint, "done", outputs, run_id))
    store.remove(RUNNING)
    store.remove(FAILED)
    client.set_terminated(run_id, status="FINISHED")
    return StageOutcome(node.name, "done", node.fingerprint, folder, outputs, run_id)


def _child_run(client: MlflowClient, tracking_uri: str, config: CorrvosConfig, node: StageNode, parent_run_id: str | None) -> str:
    experiment = ensure_experiment(client, config.tracking.experiment,
                                   default_artifact_root(tracking_uri, config.storage.root))
    tags = {"corrvos.stage": node.name, "corrvos.fingerprint": node.fingerprint,
            "corrvos.pipeline": config.pipeline.name}
    if parent_run_id:
        tags["mlflow.parentRunId"] = parent_run_id
    return client.create_run(experiment, run_name=node.name, tags=tags).info.run_id


def _run_exists(client: MlflowClient, run_id: str | None) -> bool:
    if not run_id:
        return False
    try:
        client.get_run(run_id)
    except MlflowException:
        return False
    return True


def is_retryable(exc: BaseException) -> bool:
    """True when `exc` comes from losing a process or node, not from the stage's own code.

    Retryable: a Ray worker crash, a dead actor (a Ray Train worker killed, by the OOM monitor too),
    a dead node, an OOM kill, and a Ray Train failure whose worker failures include one of those
    (collateral errors on the surviving ranks do not count against it). Anything the stage code raised
    (CorrvosError, ConfigError, DataError, any Python exception) is not.
    """
    import ray.exceptions

    lost = (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError, ray.exceptions.OutOfMemoryError,
            ray.exceptions.RayActorError)  # ActorDiedError is a RayActorError
    pending, seen = [exc], set()
    while pending:
        error = pending.pop()
        if error is None or id(error) in seen:
            continue
        seen.add(id(error))
        if isinstance(error, lost) and not getattr(error, "actor_init_failed", False):
            return True  # (an actor whose constructor raised died of its own code)
        if isinstance(error, ray.exceptions.RayTaskError):
            pending.append(error.cause)  # a task raised: retryable only if what it raised is
        pending.extend(getattr(error, "worker_failures", {}).values())  # ray.train.WorkerGroupError
        pending.append(getattr(error, "health_check_failure", None))  # a Ray Train worker that stopped answering
        pending.append(getattr(error, "controller_failure", None))  # ray.train.ControllerError
        pending.append(error.__cause__)
        if _wraps_ray_train(error):
            pending.append(error.__context__)  # `TrainingFailed` is raised `from None` over Ray Train's error
    return False


def _wraps_ray_train(error: BaseException) -> bool:
    """The training driver's `TrainingFailed` hides Ray Train's error as its context."""
    training = sys.modules.get("pipelines.training.stage")
    return training is not None and isinstance(error, training.TrainingFailed)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:500]
