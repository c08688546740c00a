"""Stages `register` (a model version with J&F and provenance tags) and `promote` (alias `champion`)."""

from __future__ import annotations

from components.config import CorrvosConfig
from pipelines.registry import EVAL_SET_TAG, promote, register_model
from pipelines.training.stage import dataset_version
from pipelines.stages.context import StageContext, datasets_with_role
from pipelines.versioning import code_version


def run_register(config: CorrvosConfig, context: StageContext) -> dict[str, str]:
    jf = float(context.inputs["evaluate"]["jf"])
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
    # what evaluate scored on: J&F is only compared between versions scored on the same held-out set
    tags[EVAL_SET_TAG] = context.inputs["evaluate"]["held_out_version"]
    version = register_model(context.tracking_uri, config.registered_model,
                             context.inputs["train"]["model"], context.run_id, jf, tags,
                             storage_options=config.storage.options)
    return {"model_uri": version.uri, "version": str(version.version)}


def run_promote(config: CorrvosConfig, context: StageContext) -> dict[str, str]:
    name = config.registered_model
    decision = promote(context.tracking_uri, name, int(context.inputs["register"]["version"]), config.tracking.promote_margin)
    context.logger.set_tags({"corrvos.promotion": decision.reason, "corrvos.alias": decision.alias})
    return {"alias": decision.alias, "champion_uri": f"models:/{name}@champion", "reason": decision.reason}
