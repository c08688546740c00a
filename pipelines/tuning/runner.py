"""`run_tune`: Ray Tune over dotted config keys, ASHA on the validation J&F reported during training.

Outputs under `output_uri`:
    ray/tune/            the Tune experiment (resumable)
    trials/<id>/         each trial's Train checkpoints, model.pt, and its MLflow run id
    trials.json          one row per trial: overrides, last val_jf and step, status, MLflow run
    best.json            {"overrides", "val_jf", "trial", "mlflow_run_id", "step", "model"}, written last

Started again with the same `output_uri`, an unfinished search continues (errored trials are run
again) and a finished one (best.json present) is returned as it is.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from typing import Any

import ray
from mlflow.tracking import MlflowClient
from ray import tune
from ray.tune.schedulers import ASHAScheduler
from ray.tune.search.basic_variant import BasicVariantGenerator

from components.config import CorrvosConfig, config_to_dict
from components.errors import ConfigError, CorrvosError
from components.storage import absolute_uri, atomic_write_bytes, open_fs, read_bytes
from pipelines.dataset_inputs import log_dataset_inputs
from pipelines.tracking import RunLogger, default_artifact_root, ensure_experiment, resolve_tracking_uri
from pipelines.training.stage import ray_storage
from pipelines.tuning.space import config_with_overrides, param_space, parse_space, plain
from pipelines.tuning.trial import (
    TRIAL_RESOURCES,
    ReleasePlacementGroups,
    TrialSetup,
    end_trial_actors,
    job_placement_groups,
    ledger,
    remove_placement_groups_since,
    run_trial,
    trial_run_id,
    trial_uri,
)

EXPERIMENT = "tune"
PARENT_RUN_FILE = "mlflow_parent_run_id"


class TuningFailed(CorrvosError):
    """No trial produced a validation score."""


def run_tune(
    config: CorrvosConfig,
    train_datasets: list[str],
    val_datasets: list[str],
    output_uri: str,
    init_weights: str | None = None,
    tracking_uri: str | None = None,
    parent_run_id: str | None = None,
) -> dict[str, str]:
    """Search `config.tune.space`; returns {"best", "trials", "experiment", "mlflow_run_id"} URIs and ids.

    Each trial trains the `train` stage for `tune.iterations` iterations on one Train worker. Trials are
    MLflow runs under `parent_run_id`, or under a `tune` run made here when none is given.
    """
    if not train_datasets or not val_datasets:
        raise ConfigError("tune needs at least one training dataset and one validation dataset")
    dimensions = parse_space(config.tune.space, config)
    output_uri = absolute_uri(output_uri)
    options = config.storage.options
    outputs = {"best": f"{output_uri}/best.json", "trials": f"{output_uri}/trials.json",
               "experiment": f"{output_uri}/ray/{EXPERIMENT}"}
    tracking_uri = resolve_tracking_uri(tracking_uri or config.tracking.mlflow_uri)
    if _exists(outputs["best"], options):  # finished before: reuse
        best = json.loads(read_bytes(outputs["best"], options))
        return {**outputs, "mlflow_run_id": best.get("parent_run_id") or parent_run_id or ""}
    parent = parent_run_id or _parent_run(config, output_uri, tracking_uri)
    log_dataset_inputs(tracking_uri, parent, [(u, "train") for u in train_datasets] + [(u, "val") for u in val_datasets],
                       options)
    ledger_name = "corrvos-tune-ledger-" + hashlib.sha256(output_uri.encode()).hexdigest()[:12]
    ledger_actor = ledger(ledger_name)  # held until the search ends
    setup = TrialSetup(
        config=config_to_dict(_trial_config(config)),
        train_datasets=tuple(absolute_uri(uri) for uri in train_datasets),
        val_datasets=tuple(absolute_uri(uri) for uri in val_datasets),
        output_uri=output_uri,
        init_weights=absolute_uri(init_weights) if init_weights else None,
        tracking_uri=tracking_uri,
        parent_run_id=parent,
        ledger_name=ledger_name,
    )
    trainable = tune.with_resources(tune.with_parameters(run_trial, setup=setup), TRIAL_RESOURCES)
    groups_before = job_placement_groups()
    try:
        results = _tuner(config, dimensions, trainable, output_uri, ledger_name).fit()
    finally:
        end_trial_actors(ledger_actor)  # `fit` may return while a stopped trial still winds down
        remove_placement_groups_since(groups_before)  # what the ledger missed; nothing can make more now
        ray.kill(ledger_actor)
    rows = _trial_rows(results, config, output_uri)
    _close_trial_runs(rows, tracking_uri)
    scored = [row for row in rows if row["val_jf"] is not None]
    if not scored:
        errors = [row["error"] for row in rows if row.get("error")]
        raise TuningFailed("no trial reported val_jf" + (f": {errors[0]}" if errors else ""))
    best_row = max(scored, key=lambda row: row["val_jf"])
    best = {key: best_row[key] for key in ("overrides", "val_jf", "trial", "mlflow_run_id", "step")}
    best["model"] = best_row["model"]
    best["parent_run_id"] = parent
    atomic_write_bytes(outputs["trials"], (json.dumps(rows, indent=2) + "\n").encode(), options)
    if parent_run_id is None:
        _finish_parent(tracking_uri, parent, best)
    atomic_write_bytes(outputs["best"], (json.dumps(best, indent=2) + "\n").encode(), options)
    return {**outputs, "mlflow_run_id": parent}


def apply_best(config: CorrvosConfig, best_uri: str) -> CorrvosConfig:
    """`config` with the overrides of a search's best.json applied (strictly, through the schema)."""
    try:
        best = json.loads(read_bytes(best_uri, config.storage.options))
    except FileNotFoundError:
        raise ConfigError(f"{best_uri}: no such tuning result") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{best_uri}: not valid JSON ({exc})") from None
    if not isinstance(best, dict) or not isinstance(best.get("overrides"), dict):
        raise ConfigError(f"{best_uri}: expected an object with an 'overrides' mapping")
    return config_with_overrides(config, best["overrides"])


def read_trials(trials_uri: str, storage_options: dict | None = None) -> list[dict[str, Any]]:
    """The rows `run_tune` wrote to trials.json."""
    return json.loads(read_bytes(trials_uri, storage_options))


def _trial_config(config: CorrvosConfig) -> CorrvosConfig:
    """The train stage as a trial runs it: `tune.iterations` long, one worker, a checkpoint at every validation;
    loss schedules and lr drops in iterations become fractions of the full stage, so a short trial still ramps
    and drops where the stage would, scaled down."""
    search = config.tune
    train = dataclasses.replace(
        config.train.in_fractions(), iterations=search.iterations, checkpoint_every=search.eval_every, num_workers=1,
        cpus_per_worker=search.cpus_per_trial, fail_at_step=None,
    )
    return dataclasses.replace(config, train=train, loss=config.loss.in_fractions(config.train.iterations))


def _tuner(config: CorrvosConfig, dimensions, trainable, output_uri: str, ledger_name: str) -> tune.Tuner:
    """A new Tuner, or the unfinished experiment at `<output>/ray/tune` restored."""
    storage_path, storage_fs = ray_storage(f"{output_uri}/ray", config.storage.options)
    experiment = os.path.join(storage_path, EXPERIMENT)
    if tune.Tuner.can_restore(experiment, storage_filesystem=storage_fs):
        return tune.Tuner.restore(experiment, trainable, resume_errored=True, storage_filesystem=storage_fs)
    search = config.tune
    scheduler = ASHAScheduler(
        time_attr="step",  # the worker's own step survives a restarted trial; reports come every eval_every steps
        metric="val_jf",
        mode="max",
        max_t=search.iterations,
        grace_period=min(search.grace_period * search.eval_every, search.iterations),
        reduction_factor=search.reduction_factor,
        stop_last_trials=False,  # a trial at max_t finishes itself, writing its model
    )
    return tune.Tuner(
        trainable,
        param_space=param_space(dimensions),
        tune_config=tune.TuneConfig(
            num_samples=search.num_samples,
            scheduler=scheduler,
            # the variant generator limits concurrency itself (Tune ignores max_concurrent_trials with it)
            search_alg=BasicVariantGenerator(random_state=search.seed, max_concurrent=search.max_concurrent),
        ),
        run_config=tune.RunConfig(
            name=EXPERIMENT, storage_path=storage_path, storage_filesystem=storage_fs,
            callbacks=[ReleasePlacementGroups(ledger_name)], verbose=1,
        ),
    )


def _trial_rows(results: tune.ResultGrid, config: CorrvosConfig, output_uri: str) -> list[dict[str, Any]]:
    rows = []
    for result in results:
        metrics = result.metrics or {}
        trial_id = metrics.get("trial_id") or _trial_id_from_path(result.path)
        step = metrics.get("step")
        if result.error is not None:
            status = "error"
        elif step == config.tune.iterations:
            status = "completed"
        else:
            status = "stopped"
        model = f"{trial_uri(output_uri, trial_id)}/model.pt" if status == "completed" else None
        rows.append({
            "trial": trial_id,
            "overrides": {key: plain(value) for key, value in (result.config or {}).items()},
            "val_jf": float(metrics["val_jf"]) if "val_jf" in metrics else None,
            "step": step,
            "status": status,
            "mlflow_run_id": trial_run_id(output_uri, trial_id, config.storage.options) if trial_id else None,
            "model": model if model and _exists(model, config.storage.options) else None,
            "error": _first_line(result.error) if result.error is not None else None,
        })
    return sorted(rows, key=lambda row: row["trial"] or "")


def _close_trial_runs(rows: list[dict[str, Any]], tracking_uri: str) -> None:
    """Close each trial's MLflow run with what happened: a trial stopped by ASHA is killed mid-`fit`, so its
    own run either stayed RUNNING or was marked FAILED by the dying trial; stopped is a finished trial."""
    client = MlflowClient(tracking_uri)
    for row in rows:
        if not row["mlflow_run_id"]:
            continue
        client.set_tag(row["mlflow_run_id"], "corrvos.tune.status", row["status"])
        client.set_terminated(row["mlflow_run_id"], status="FAILED" if row["status"] == "error" else "FINISHED")


def _parent_run(config: CorrvosConfig, output_uri: str, tracking_uri: str) -> str:
    """A `tune` run to hold the trials when the caller gives none; the same one when the search resumes."""
    marker = f"{output_uri}/{PARENT_RUN_FILE}"
    if _exists(marker, config.storage.options):
        return read_bytes(marker, config.storage.options).decode().strip()
    client = MlflowClient(tracking_uri)
    experiment = ensure_experiment(client, config.tracking.experiment, default_artifact_root(tracking_uri, config.storage.root))
    run = client.create_run(experiment, run_name="tune", tags={"corrvos.stage": "tune"})
    RunLogger(tracking_uri, run.info.run_id).log_params({
        f"tune.{key}": str(value) for key, value in config_to_dict(config.tune).items() if key != "space"
    })
    client.log_text(run.info.run_id, json.dumps(config.tune.space, indent=2), "tune/space.json")
    atomic_write_bytes(marker, run.info.run_id.encode(), config.storage.options)
    return run.info.run_id


def _finish_parent(tracking_uri: str, run_id: str, best: dict[str, Any]) -> None:
    client = MlflowClient(tracking_uri)
    RunLogger(tracking_uri, run_id).log_metrics({"best_val_jf": best["val_jf"]}, step=0)
    client.set_tag(run_id, "corrvos.tune.best_trial", best["trial"])
    client.log_text(run_id, json.dumps(best, indent=2), "tune/best.json")
    client.set_terminated(run_id, status="FINISHED")


def _trial_id_from_path(path: str | None) -> str | None:
    found = re.search(r"_([0-9a-f]{5}_\d{5})", os.path.basename(path or ""))
    return found.group(1) if found else None


def _exists(uri: str, options: dict) -> bool:
    fs, path = open_fs(uri, options)
    return fs.exists(path)


def _first_line(exc: BaseException) -> str:
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return (lines[-1] if lines else type(exc).__name__)[:300]
