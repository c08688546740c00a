"""The pipeline on Ray: one `ray.remote` task per stage, chained by passing ObjectRefs.

Ray schedules each stage when its inputs are ready and on a node with its resources; stages that
drive Ray Train or Tune take no CPU themselves (their workers do). One MLflow parent run per call.
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
from pipelines.dag.execute import StageOutcome, execute_stage, stage_folder
from pipelines.dag.graph import StageNode, active_stages, plan, with_resolved_precision
from pipelines.dag.records import StageStore
from pipelines.dag.sources import MISSING, source_signature
from pipelines.dag.state import PipelineState
from pipelines.tracking import check_tracking_reachable, default_artifact_root, ensure_experiment, resolve_tracking_uri
from pipelines.versioning import code_version

STAGE_CPUS = {"ingest": 1, "evaluate": 1}  # the others drive Ray Train / Tune or MLflow and take none


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
    return dataclasses.replace(config, storage=dataclasses.replace(config.storage, root=root.rstrip("/")),
                               tracking=tracking)


def check_inputs(config: CorrvosConfig) -> dict[str, str]:
    """Before anything runs: every required source exists and the tracking server answers.

    Returns each source's signature (a walk of its folder), so planning need not walk it again.
    """
    signatures = {}
    for index, source in enumerate(config.pipeline.sources):
        signatures[source.name] = source_signature(source, config.storage.options)
        if not source.optional and signatures[source.name] == MISSING:
            raise DataError(f"pipeline.sources[{index}] ({source.name}): {source.source} not found")
    check_tracking_reachable(config.tracking.mlflow_uri)
    return signatures


def planned_nodes(config: CorrvosConfig, signatures: dict[str, str] | None = None) -> list[StageNode]:
    """The stages of `config` with their fingerprints (config must have resolved locations)."""
    if signatures is None:
        signatures = {s.name: source_signature(s, config.storage.options) for s in config.pipeline.sources}
    return plan(config, code_version(), PipelineState(config).generations(), signatures)


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
    parent = client.create_run(experiment, run_name=f"pipeline {config.pipeline.name}", tags={
        "corrvos.pipeline": config.pipeline.name, "corrvos.code_version": code_version(),
        "corrvos.rerun": rerun or "",
    }).info.run_id
    client.log_text(parent, _public_yaml(config), "config/resolved.yaml")
    payload = config_to_dict(config)
    refs: dict[str, ray.ObjectRef] = {}
    for node in nodes:
        task = _stage_task.options(num_cpus=STAGE_CPUS.get(node.name, 0), name=f"corrvos-{node.name}")
        refs[node.name] = task.remote(node, payload, tracking_uri, parent, progress, *[refs[i] for i in node.inputs])
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
                progress: bool, *upstream: StageOutcome) -> StageOutcome:
    config = config_from_dict(CorrvosConfig, payload)
    return execute_stage(node, config, tracking_uri, parent_run_id, {o.name: o.outputs for o in upstream}, progress)


def _record_failure(state: PipelineState, client: MlflowClient, parent: str, outcomes: dict[str, StageOutcome],
                    nodes: list[StageNode], failed: StageNode, tracking_uri: str) -> None:
    stages = _stage_entries(outcomes)
    for node in nodes[len(outcomes):]:
        stages[node.name] = {"state": "failed" if node is failed else "not started", "outputs": {},
                             "mlflow_run_id": None, "fingerprint": node.fingerprint, "uri": None}
    state.save_summary({"stages": stages, "jf": None, "model_uri": None, "champion_uri": None, "parent_run_id": parent})
    client.set_terminated(parent, status="FAILED")


def _cause_line(exc: BaseException) -> str:
    cause = getattr(exc, "cause", None) or exc
    text = str(cause).strip()
    if isinstance(cause, ray.exceptions.RayError) and not isinstance(cause, ray.exceptions.RayTaskError):
        return text.splitlines()[0] if text else type(cause).__name__
    lines = [line for line in text.splitlines() if line.strip()]
    return (lines[-1] if lines else type(cause).__name__)[:500]


def _public_yaml(config: CorrvosConfig) -> str:
    import yaml

    plain = config_to_dict(config)
    plain["storage"]["options"] = {}
    return yaml.safe_dump(plain, sort_keys=False)


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
        state = record.state
        previous = last.get(node.name, {})
        if state == "done" and previous.get("fingerprint") == node.fingerprint and previous.get("state") == "reused":
            state = "reused"
        rows.append(StageStatus(node.name, state, folder, record.mlflow_run_id, record.error))
    return rows
