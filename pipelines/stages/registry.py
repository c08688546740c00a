"""Stages `register` (a model version with J&F and provenance tags) and `promote` (alias `champion`)."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from components.config import CorrvosConfig, InferenceConfig, ProbeConfig, config_from_dict
from components.errors import ConfigError, CorrvosError
from pipelines.dataset_inputs import log_dataset_inputs
from pipelines.registry import EVAL_SET_TAG, promote, register_model
from pipelines.training.stage import dataset_version
from pipelines.stages.context import StageContext, datasets_with_role
from pipelines.stages.submission import archive_tags
from pipelines.versioning import code_version


def run_register(config: CorrvosConfig, context: StageContext) -> dict[str, str]:
    evaluate = context.inputs["evaluate"]
    jf = float(evaluate["jf"])
    train = datasets_with_role(config, context.inputs["ingest"], "train") if "ingest" in context.inputs else []
    tags = {
        "corrvos.code_version": code_version(),
        "corrvos.preset": f"model={config.model.name}/{config.model.preset} loss={config.loss.preset}",
        "corrvos.loss_weights": f"pcl={config.loss.pcl_weight} cross_view={config.loss.cross_view_weight} ocl={config.loss.ocl_weight}",
        "corrvos.scores": context.inputs["evaluate"]["scores"],
        "corrvos.config": f"runs:/{context.parent_run_id}/config/resolved.yaml" if context.parent_run_id else "",
    }
    if train:
        tags["corrvos.dataset_version"] = dataset_version(train, config.storage.options)
    # the version's run shows what it was trained and scored on in MLflow's Dataset column
    ingested, primary = context.inputs.get("ingest", {}), evaluate.get("primary_test_set")
    tested = [(ingested[primary], "test")] if primary in ingested else []
    log_dataset_inputs(context.tracking_uri, context.run_id, [(u, "train") for u in train] + tested,
                       config.storage.options)
    # what evaluate scored on: J&F is only compared between versions scored on the same held-out set
    tags[EVAL_SET_TAG] = context.inputs["evaluate"]["held_out_version"]
    tags.update(_test_set_tags(evaluate))
    tags.update(archive_tags(evaluate))  # which benchmark upload archives exist for this model
    # the settings J&F was measured with travel into the registered checkpoint (an evaluate record written
    # before evaluate reported them: this config's, which its fingerprint covered)
    inference = _scored(evaluate, "inference_config", InferenceConfig, "inference", config.inference)
    probe = _scored(evaluate, "probe_config", ProbeConfig, "probe", config.probe)
    version = register_model(context.tracking_uri, config.registered_model,
                             context.inputs["train"]["model"], context.run_id, jf, tags,
                             storage_options=config.storage.options, inference=inference, probe=probe)
    return {"model_uri": version.uri, "version": str(version.version)}


T = TypeVar("T")


def _test_set_tags(evaluate: dict[str, str]) -> dict[str, str]:
    """Every test set's J&F beside its copy-first-mask floor (`corrvos.jf` is the primary set's alone)."""
    tags = {}
    for name, entry in json.loads(evaluate.get("test_sets", "{}")).items():
        tags[f"corrvos.test.{name}.jf"] = repr(float(entry["jf"]))
        tags[f"corrvos.test.{name}.floor_jf"] = repr(float(entry["floor_jf"]))
    if "primary_test_set" in evaluate:
        tags["corrvos.primary_test_set"] = evaluate["primary_test_set"]
    return tags


def _scored(outputs: dict[str, Any], key: str, cls: type[T], section: str, fallback: T) -> T:
    """The config evaluate reported under `key` (JSON), else `fallback`; a malformed one is a CorrvosError."""
    text = outputs.get(key)
    if text is None:
        return fallback
    try:
        return config_from_dict(cls, json.loads(text), section)
    except (ValueError, ConfigError) as exc:  # json.JSONDecodeError is a ValueError
        raise CorrvosError(f"evaluate output {key!r}: not a {section} config ({exc})") from None


def run_promote(config: CorrvosConfig, context: StageContext) -> dict[str, str]:
    name = config.registered_model
    decision = promote(context.tracking_uri, name, int(context.inputs["register"]["version"]), config.tracking.promote_margin)
    context.logger.set_tags({"corrvos.promotion": decision.reason, "corrvos.alias": decision.alias})
    return {"alias": decision.alias, "champion_uri": f"models:/{name}@champion", "reason": decision.reason}
