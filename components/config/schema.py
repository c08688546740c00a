"""The config schema: the whole file (`CorrvosConfig`) composed of one strict frozen dataclass per section.

The sections live by seam: `network_sections` (model, loss, inference) and `run_sections` (stages, tracking,
storage, pipeline, evaluate, tune, probe); their names are re-exported here, so `components.config.schema`
stays the one place to import a section from.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from components.config.network_sections import (  # noqa: F401  (re-exported)
    BackboneWeights,
    MODEL_PRESETS,
    ModelConfig,
    LOSS_PRESETS,
    WHOLE_ITERATION,
    LossConfig,
    XMemMemoryConfig,
    INFERENCE_PRESETS,
    InferenceConfig,
)
from components.config.ranges import check_finite
from components.config.run_sections import (  # noqa: F401  (re-exported)
    STAGE_PRESETS,
    StageConfig,
    PretrainConfig,
    TrackingConfig,
    StorageConfig,
    DatasetSource,
    DEFAULT_SOURCES,
    PipelineConfig,
    EvaluateConfig,
    DEFAULT_TUNE_SPACE,
    TuneConfig,
    ProbeConfig,
)
from components.data.config import DataConfig


@dataclass(frozen=True)
class CorrvosConfig:
    """The whole config file."""

    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    inference: InferenceConfig = field(default_factory=InferenceConfig)
    data: DataConfig = field(default_factory=DataConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    train: StageConfig = field(default_factory=StageConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    tune: TuneConfig = field(default_factory=TuneConfig)
    probe: ProbeConfig = field(default_factory=ProbeConfig)

    def __post_init__(self) -> None:
        check_finite(self, "")  # also the sections whose own checks live elsewhere (data.*)
        steers = [what for what, on in (("pipeline.tune", self.pipeline.tune),
                                        ("evaluate.validate_every", self.evaluate.validate_every is not None)) if on]
        if steers and not any("val" in s.roles for s in self.pipeline.sources):
            raise ValueError(f"{steers[0]} steers on validation videos, but no dataset in pipeline.sources has role 'val'")

    @property
    def registered_model(self) -> str:
        """The MLflow registered model: `tracking.registered_model`, else one name per base model."""
        return self.tracking.registered_model or f"corrvos-{self.model.name}"
