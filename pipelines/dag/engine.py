"""The pipeline on Ray: one `ray.remote` task per stage, chained by passing ObjectRefs.

Ray schedules each stage when its inputs are ready and on a node with its resources; stages that
drive Ray Train or Tune take no CPU themselves (their workers do). One MLflow parent run per call;
the pipeline state records which process drives it, so the next call ends the MLflow runs of a
driver that a kill -9 left behind (status KILLED). Training stages are run again after a retryable
death (`pipeline.stage_retries`).
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from typing import Any

import ray
from mlflow.tracking import MlflowClient
from tqdm import tqdm

from components.config import CorrvosConfig, config_from_dict, config_to_dict
from components.errors import ConfigError, CorrvosError, DataError
from components.liveness import process_gone
from components.storage import storage_errors
from pipelines.dag.execute import Driver, StageOutcome, execute_stage, stage_folder
from pipelines.dag.graph import StageNode, active_stages, plan, with_resolved_precision
from pipelines.dag.records import StageStore, running_state
from pipelines.dag.sources import MISSING, init_signature, source_signature
from pipelines.dag.state import DriverRecord, PipelineState
from pipelines.run_names import pipeline_run_name
from pipelines.tracking import check_tracking_reachable, default_artifact_root, ensure_experiment, resolve_tracking_uri
from pipelines.versioning import code_version

INIT_KEY = "<pipeline.init_from>"  # its signature travels with the sources' (dataset names never start with '<')
STAGE_CPUS = {"ingest": 1, "evaluate": 1}  # the others drive Ray Train / Tune or MLflow and take none
RETRIED_STAGES = ("pretrain", "train")  # resume from their checkpoints, so another attempt loses little
KILLED_TAG = "corrvos.killed"


class StageFailed(CorrvosError):
    """A stage raised; the pipeline stops there (finished stages stay reusable)."""


@dataclass(frozen=True)
class PipelineRun:
    """The outcome of `run_pipeline`: every stage's outcome and the parent MLflow run."""

    outcomes: dict[str, StageOutcome]
    parent_run_id: str
    tracking_uri: str

    def summary(self) -> dict[str, Any]:
        """The `--summary-json` document."""
        stages = _stage_entries(self.outcomes)
        evaluate = self.outcomes.get("evaluate")
        register = self.outcomes.get("register")
        promote = self.outcomes.get("promote")
        return {
            "stages": stages,
            "jf": float(evaluate.outputs["jf"]) if evaluate else None,
            "test_sets": json.loads(evaluate.outputs["test_sets"]) if evaluate and "test_sets" in evaluate.outputs else None,
            "model_uri": register.outputs["model_uri"] if register else None,
            "champion_uri": promote.outputs["champion_uri"] if promote else None,
            "parent_run_id": self.parent_run_id,
        }


def _stage_entries(outcomes: dict[str, StageOutcome]) -> dict[str, dict[str, Any]]:
    """The summary's `stages` entries of the stages that ended."""
    return {name: {"state": o.state, "outputs": o.outputs, "mlflow_run_id": o.mlflow_run_id,
                   "fingerprint": o.fingerprint, "uri": o.folder} for name, o in outcomes.items()}


def resolve_locations(config: CorrvosConfig) -> CorrvosConfig:
    """Absolute local storage root and SQLite path: Ray tasks run in other working directories."""
    root = config.storage.root
    if "://" not in root:
        root = os.path.abspath(root)
    elif root.startswith("file://"):
        root = os.path.abspath(root.removeprefix("file://"))
    tracking = dataclasses.replace(config.tracking, mlflow_uri=resolve_tracking_uri(config.tracking.mlflow_uri))
    pipeline = config.pipeline
    if pipeline.init_from and "://" not in pipeline.init_from and not pipeline.init_from.startswith("models:/"):
        pipeline = dataclasses.replace(pipeline, init_from=os.path.abspath(os.path.expanduser(pipeline.init_from)))
    return dataclasses.replace(config, storage=dataclasses.replace(config.storage, root=root.rstrip("/")),
                               tracking=tracking, pipeline=pipeline)


def check_inputs(config: CorrvosConfig) -> dict[str, str]:
    """Before anything runs: every required source exists and the tracking server answers.

    Returns each source's signature (a walk of its folder), so planning need not walk it again.
    """
    signatures = {}
    for index, source in enumerate(config.pipeline.sources):
        with storage_errors(source.source, config.storage.options):
            signatures[source.name] = source_signature(source, config.storage.options)
        if not source.optional and signatures[source.name] == MISSING:
            raise DataError(f"pipeline.sources[{index}] ({source.name}): {source.source} not found")
    check_tracking_reachable(config.tracking.mlflow_uri)
    if config.pipeline.init_from:
        signatures[INIT_KEY] = init_signature(config.pipeline.init_from, config.storage.options,
                                              config.tracking.mlflow_uri)
    return signatures


def planned_nodes(config: CorrvosConfig, signatures: dict[str, str] | None = None) -> list[StageNode]:
    """The stages of `config` with their fingerprints (config must have resolved locations)."""
    if signatures is None:
        signatures = {s.name: source_signature(s, config.storage.options) for s in config.pipeline.sources}
    signatures = dict(signatures)
    init = signatures.pop(INIT_KEY, None)
    if init is None and config.pipeline.init_from:
        init = init_signature(config.pipeline.init_from, config.storage.options, config.tracking.mlflow_uri)
    return plan(config, code_version(), PipelineState(config).generations(), signatures, init)


def run_pipeline(config: CorrvosConfig, rerun: str | None = None, progress: bool = True,
                 signatures: dict[str, str] | None = None) -> PipelineRun:
    """Run (or reuse) every stage; with `rerun`, that stage and everything downstream get new outputs.

    `signatures` are `check_inputs`'s result when the caller has just checked; otherwise it checks here.
    The stages get `config` with every `precision: auto` resolved here, as their fingerprints have it
    (`with_resolved_precision`): workers on any node run that name, and `evaluate` records it, so a
    registered model serves the precision it was scored in.
    """
    config = with_resolved_precision(resolve_locations(config))
    state = PipelineState(config)
    if rerun is not None:
        if rerun not in active_stages(config):
            raise ConfigError(f"rerun: unknown stage {rerun!r} (this pipeline has {', '.join(active_stages(config))})")
        state.bump(rerun)
    if signatures is None:
        signatures = check_inputs(config)
    nodes = planned_nodes(config, signatures)
    tracking_uri = config.tracking.mlflow_uri
    client = MlflowClient(tracking_uri)
    experiment = ensure_experiment(client, config.tracking.experiment,
                                   default_artifact_root(tracking_uri, config.storage.root))
    parent = client.create_run(experiment, run_name=pipeline_run_name(config), tags={
        "corrvos.pipeline": config.pipeline.name, "corrvos.code_version": code_version(),
        "corrvos.rerun": rerun or "",
    }).info.run_id
    driver = state.register_driver(parent)
    try:
        end_stale_runs(state, client, parent)
        client.log_text(parent, _public_yaml(config), "config/resolved.yaml")
        result = _run_stages(config, state, nodes, client, parent, Driver(driver.host, driver.pid), progress)
    except BaseException as exc:
        _end_parent(client, parent, "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED")
        raise
    finally:
        state.release_driver(parent)
    return result


def _run_stages(config: CorrvosConfig, state: PipelineState, nodes: list[StageNode], client: MlflowClient,
                parent: str, driver: Driver, progress: bool) -> PipelineRun:
    """Submit every stage as a Ray task, wait for each in order, save the summary, finish the parent run."""
    tracking_uri = config.tracking.mlflow_uri
    payload = config_to_dict(config)
    retries = getattr(config.pipeline, "stage_retries", 1)
    refs: dict[str, ray.ObjectRef] = {}
    for node in nodes:
        stage_retries = retries if node.name in RETRIED_STAGES else 0
        # Ray runs the task again only when its process dies (retry_exceptions=False): a system failure
        task = _stage_task.options(num_cpus=STAGE_CPUS.get(node.name, 0), name=f"corrvos-{node.name}",
                                   max_retries=stage_retries, retry_exceptions=False)
        refs[node.name] = task.remote(node, payload, tracking_uri, parent, progress, stage_retries, driver,
                                      *[refs[i] for i in node.inputs])
    outcomes: dict[str, StageOutcome] = {}
    with tqdm(total=len(nodes), desc="pipeline", unit="stage", disable=not progress) as bar:
        for node in nodes:
            try:
                outcome = ray.get(refs[node.name])
            except ray.exceptions.RayError as exc:
                _record_failure(state, client, parent, outcomes, nodes, node, tracking_uri)
                reason = _cause_line(exc)
                prefix = f"stage {node.name} failed: "
                raise StageFailed(reason if reason.startswith(prefix) else prefix + reason) from None
            outcomes[node.name] = outcome
            client.set_tag(parent, f"corrvos.stage.{node.name}", f"{outcome.state} {outcome.mlflow_run_id}")
            bar.set_postfix_str(f"{node.name}: {outcome.state}")
            bar.update()
    result = PipelineRun(outcomes, parent, tracking_uri)
    summary = result.summary()
    state.save_summary(summary)
    if summary["jf"] is not None:
        client.log_metric(parent, "jf", summary["jf"])
    client.set_terminated(parent, status="FINISHED")
    return result


@ray.remote(max_retries=0)
def _stage_task(node: StageNode, payload: dict[str, Any], tracking_uri: str, parent_run_id: str,
                progress: bool, retries: int, driver: Driver, *upstream: StageOutcome) -> StageOutcome:
    config = config_from_dict(CorrvosConfig, payload)
    return execute_stage(node, config, tracking_uri, parent_run_id, {o.name: o.outputs for o in upstream}, progress,
                         retries=retries, driver=driver)


def end_stale_runs(state: PipelineState, client: MlflowClient, current_parent: str) -> list[str]:
    """End the MLflow runs of every recorded pipeline run whose driver process is gone from this host.

    The parent run and each of its descendants still RUNNING become KILLED, tagged `corrvos.killed`
    with the reason; their driver records are removed. A driver alive here, or on another host (which
    this process cannot check), is left alone. Returns the parent run ids ended.
    """
    ended = []
    for record in state.drivers():
        if record.parent_run_id == current_parent or not process_gone(record.host, record.pid):
            continue
        _kill_run_tree(client, record.parent_run_id, _killed_reason(record, current_parent))
        state.release_driver(record.parent_run_id)
        ended.append(record.parent_run_id)
    return ended


def _killed_reason(record: DriverRecord, current_parent: str) -> str:
    return (f"driver pid {record.pid} on {record.host} (started {record.started or '?'}) was gone; "
            f"ended by pipeline run {current_parent}")


def _kill_run_tree(client: MlflowClient, run_id: str, reason: str, depth: int = 3) -> None:
    """Mark `run_id` KILLED if it is still RUNNING, and likewise its descendants (stages, tune trials)."""
    from mlflow.exceptions import MlflowException

    try:
        run = client.get_run(run_id)
    except MlflowException:
        return  # deleted by hand, or another store: nothing to end
    if run.info.status == "RUNNING":
        client.set_tag(run_id, KILLED_TAG, reason)
        client.set_terminated(run_id, status="KILLED")
    if depth == 0:
        return
    children = client.search_runs([run.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{run_id}'",
                                  max_results=1000)
    for child in children:
        _kill_run_tree(client, child.info.run_id, reason, depth - 1)


def _record_failure(state: PipelineState, client: MlflowClient, parent: str, outcomes: dict[str, StageOutcome],
                    nodes: list[StageNode], failed: StageNode, tracking_uri: str) -> None:
    stages = _stage_entries(outcomes)
    for node in nodes[len(outcomes):]:
        stages[node.name] = {"state": "failed" if node is failed else "not started", "outputs": {},
                             "mlflow_run_id": None, "fingerprint": node.fingerprint, "uri": None}
    state.save_summary({"stages": stages, "jf": None, "model_uri": None, "champion_uri": None, "parent_run_id": parent})
    client.set_terminated(parent, status="FAILED")


def _end_parent(client: MlflowClient, parent: str, status: str) -> None:
    """Leave no parent run RUNNING on the way out of an error (one StageFailed has not marked already)."""
    try:
        if client.get_run(parent).info.status == "RUNNING":
            client.set_terminated(parent, status=status)
    except Exception:  # the tracking store itself may be what failed; the original error matters more
        pass


def _cause_line(exc: BaseException) -> str:
    cause = getattr(exc, "cause", None) or exc
    text = str(cause).strip()
    if isinstance(cause, ray.exceptions.RayError) and not isinstance(cause, ray.exceptions.RayTaskError):
        return text.splitlines()[0] if text else type(cause).__name__
    lines = [line for line in text.splitlines() if line.strip()]
    return (lines[-1] if lines else type(cause).__name__)[:500]


def _public_yaml(config: CorrvosConfig) -> str:
    import yaml

    from components.secrets import public_config

    return yaml.safe_dump(public_config(config_to_dict(config)), sort_keys=False)


@dataclass(frozen=True)
class StageStatus:
    """One row of `corrvos status`."""

    name: str
    state: str
    uri: str
    mlflow_run_id: str | None
    error: str | None = None


def pipeline_status(config: CorrvosConfig) -> list[StageStatus]:
    """What each stage of `config` would do now: done, reused, running, failed or not started."""
    config = resolve_locations(config)
    last = (PipelineState(config).last_summary() or {}).get("stages", {})
    rows = []
    for node in planned_nodes(config):
        folder = stage_folder(config, node)
        record = StageStore(folder, config.storage.options).current()
        if record is None:
            rows.append(StageStatus(node.name, "not started", folder, None))
            continue
        state = running_state(record) if record.state == "running" else record.state
        previous = last.get(node.name, {})
        if state == "done" and previous.get("fingerprint") == node.fingerprint and previous.get("state") == "reused":
            state = "reused"
        rows.append(StageStatus(node.name, state, folder, record.mlflow_run_id, record.error))
    return rows
