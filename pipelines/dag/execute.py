"""Run one stage durably: reuse a verified success record, else run it in its MLflow child run.

A stage that crashed (its `_RUNNING.json` or `_FAILED.json` is there) runs again in the same
MLflow run and the same folder, so a training stage resumes from its own checkpoints.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from components.config import CorrvosConfig
from pipelines.dag.graph import StageNode
from pipelines.dag.records import FAILED, RUNNING, SUCCESS, StageRecord, StageStore, outputs_exist
from pipelines.stages.context import StageContext
from pipelines.tracking import ensure_experiment, default_artifact_root

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


def execute_stage(node: StageNode, config: CorrvosConfig, tracking_uri: str, parent_run_id: str | None,
                  inputs: dict[str, dict[str, str]], progress: bool = True) -> StageOutcome:
    """Reuse the stage's verified outputs or run it; records `_SUCCESS.json` last. `progress`: the
    stage may draw progress bars."""
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
    store.write(RUNNING, StageRecord(node.name, node.fingerprint, "running", mlflow_run_id=run_id))
    context = StageContext(folder, inputs, tracking_uri, run_id, parent_run_id, dict(options), progress)
    try:
        outputs = stage_functions()[node.name](config, context)
    except BaseException as exc:
        store.write(FAILED, StageRecord(node.name, node.fingerprint, "failed", mlflow_run_id=run_id,
                                        error=_first_line(exc)))
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


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:500]
