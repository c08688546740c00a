"""Stages `pretrain` and `train` on Ray Train (`train` starts from `pretrain`, or `pipeline.init_from`, with tuned settings if any)."""

from __future__ import annotations

from components.config import CorrvosConfig
from pipelines.stages.context import StageContext, datasets_with_role
from pipelines.stages.init_weights import stage_init
from pipelines.training.tracked import run_tracked_training_stage
from pipelines.training.worker import PeriodicValidation


def run_pretrain(config: CorrvosConfig, context: StageContext) -> dict[str, str]:
    datasets = datasets_with_role(config, context.inputs["ingest"], "pretrain")
    return _train(config, "pretrain", datasets, context, init=None)


def run_train(config: CorrvosConfig, context: StageContext) -> dict[str, str]:
    if "tune" in context.inputs:
        from pipelines.tuning import apply_best

        config = apply_best(config, context.inputs["tune"]["best"])
    datasets = datasets_with_role(config, context.inputs["ingest"], "train")
    validation = None
    if config.evaluate.validate_every is not None:  # a held-out J&F curve beside the loss curves
        val = datasets_with_role(config, context.inputs["ingest"], "val")
        validation = PeriodicValidation(tuple(val), config.evaluate.validate_every, config.evaluate.validate_videos)
    return _train(config, "train", datasets, context, init=stage_init(config, context), validation=validation)


def _train(config: CorrvosConfig, stage: str, datasets: list[str], context: StageContext, init: str | None,
           validation: PeriodicValidation | None = None) -> dict[str, str]:
    outputs = run_tracked_training_stage(config, stage, datasets, context.out, init,
                                         parent_run_id=context.parent_run_id, run_id=context.run_id,
                                         validation=validation)
    outputs.pop("mlflow_run_id", None)
    return outputs
