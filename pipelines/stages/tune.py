"""Stage `tune`: Ray Tune over the loss weights and learning rate; the best settings feed `train`."""

from __future__ import annotations

from components.config import CorrvosConfig
from pipelines.stages.context import StageContext, datasets_with_role
from pipelines.stages.init_weights import stage_init


def run_tune_stage(config: CorrvosConfig, context: StageContext) -> dict[str, str]:
    from pipelines.tuning import run_tune

    train = datasets_with_role(config, context.inputs["ingest"], "train")
    val = datasets_with_role(config, context.inputs["ingest"], "val")
    return run_tune(config, train, val, context.out, stage_init(config, context),
                    context.tracking_uri, context.run_id)
