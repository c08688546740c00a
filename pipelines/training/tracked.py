"""A training stage inside its own MLflow run: params, tags, previews, loss curves, final weights.

Only this driver and rank 0 of the workers log; both address the run by id. No secret reaches
MLflow: params leave out `storage.options` (`pipelines.tracking.flatten_config`) and the logged
resolved.yaml shows them hidden (references kept) with the tracking URI redacted (`public_config`).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from mlflow.tracking import MlflowClient

from components.config import CorrvosConfig, config_to_dict
from components.secrets import public_config
from components.storage import read_bytes
from components.training.curves import plot_curves
from pipelines.tracking import RunLogger, default_artifact_root, ensure_experiment, flatten_config, resolve_tracking_uri
from pipelines.dataset_inputs import log_dataset_inputs
from pipelines.training.stage import dataset_version, run_training_stage
from pipelines.training.worker import PeriodicValidation
from pipelines.versioning import code_version

CURVE_KEYS = ("total", "seg", "dice", "pcl", "cross_view", "ocl", "lambda", "lr", "grad_norm", "samples_per_s", "data_wait_share", "val_jf")


def start_stage_run(config: CorrvosConfig, stage_name: str, parent_run_id: str | None = None,
                    run_id: str | None = None) -> tuple[str, str]:
    """Create (or reuse, when `run_id` is given) the stage's MLflow run; returns (tracking_uri, run_id)."""
    tracking_uri = resolve_tracking_uri(config.tracking.mlflow_uri)
    client = MlflowClient(tracking_uri)
    if run_id is not None:
        return tracking_uri, run_id
    experiment = ensure_experiment(client, config.tracking.experiment, default_artifact_root(tracking_uri, config.storage.root))
    tags = {"corrvos.stage": stage_name}
    if parent_run_id:
        tags["mlflow.parentRunId"] = parent_run_id
    run = client.create_run(experiment, run_name=stage_name, tags=tags)
    return tracking_uri, run.info.run_id


def stage_params(public: dict, stage_name: str) -> dict[str, str]:
    """The MLflow params of a training stage: its own section, model, loss and data, from a `public_config`."""
    return {k: v for k, v in flatten_config(public).items() if k.startswith((f"{stage_name}.", "model.", "loss.", "data."))}


def run_tracked_training_stage(
    config: CorrvosConfig,
    stage_name: str,
    datasets: list[str],
    output_uri: str,
    init_weights: str | None = None,
    parent_run_id: str | None = None,
    run_id: str | None = None,
    validation: PeriodicValidation | None = None,
) -> dict[str, str]:
    """Run the stage inside an MLflow run; returns the stage outputs plus `mlflow_run_id`.

    With `validation`, the run also gets a `val_jf` curve (held-out J&F during training).
    """
    version = dataset_version(datasets, config.storage.options)  # a bad dataset fails before a run is opened
    tracking_uri, run_id = start_stage_run(config, stage_name, parent_run_id, run_id)
    logger = RunLogger(tracking_uri, run_id)
    stage = getattr(config, stage_name)
    resolved = public_config(config_to_dict(config))
    logger.log_params(stage_params(resolved, stage_name))
    inputs = [(uri, stage_name) for uri in datasets]  # read in the role the stage is named after
    inputs += [(uri, "val") for uri in (validation.datasets if validation is not None else ())]
    log_dataset_inputs(tracking_uri, run_id, inputs, config.storage.options)
    logger.set_tags({
        "corrvos.dataset_version": version,
        "corrvos.code_version": code_version(),
        "corrvos.preset": f"model={config.model.preset} loss={config.loss.preset} stage={stage.preset}",
    })
    import yaml

    logger.log_text(yaml.safe_dump(resolved, sort_keys=False), "config/resolved.yaml")  # public_config'd above
    client = MlflowClient(tracking_uri)
    try:
        outputs = run_training_stage(config, stage_name, datasets, output_uri, init_weights, tracking_uri, run_id,
                                     validation=validation)
    except BaseException:
        client.set_terminated(run_id, status="FAILED")
        raise
    with tempfile.TemporaryDirectory() as folder:
        weights = Path(folder, "model.pt")
        weights.write_bytes(read_bytes(outputs["model"]))
        logger.log_file(weights, "model")
        curves = {}
        for key in CURVE_KEYS:
            history = sorted(client.get_metric_history(run_id, key), key=lambda m: (m.step, m.timestamp))
            if history:
                curves[key] = ([m.step for m in history], [m.value for m in history])
        if curves:
            logger.log_file(plot_curves(curves, Path(folder, "loss_curves.png"), f"{stage_name} ({config.loss.preset})"))
    client.set_terminated(run_id, status="FINISHED")
    return {**outputs, "mlflow_run_id": run_id}
