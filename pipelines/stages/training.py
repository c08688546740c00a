"""Stages `pretrain` and `train` on Ray Train (`train` starts from `pretrain`, with tuned settings if any)."""

from __future__ import annotations

from components.config import CorrvosConfig
from pipelines.stages.context import StageContext, datasets_with_role
from pipelines.training.tracked import run_tracked_training_stage


def run_pretrain(config: CorrvosConfig, context: StageContext) -> dict[str, str]:
    datasets = datasets_with_role(config, context.inputs["ingest"], "pretrain")
    return _train(config, "pretrain", datasets, context, init=None)


def run_train(config: CorrvosConfig, context: StageContext) -> dict[str, str]:
    if "tune" in context.inputs:
        from pipelines.tuning import apply_best

        config = apply_best(config, context.inputs["tune"]["best"])
    datasets = datasets_with_role(config, context.inputs["ingest"], "train")
    return _train(config, "train", datasets, context, init=context.inputs["pretrain"]["model"])


def _train(config: CorrvosConfig, stage: str, datasets: list[str], context: StageContext, init: str | None) -> dict[str, str]:
    outputs = run_tracked_training_stage(config, stage, datasets, context.out, init,
                                         parent_run_id=context.parent_run_id, run_id=context.run_id)
    outputs.pop("mlflow_run_id", None)
    return outputs
