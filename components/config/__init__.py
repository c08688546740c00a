"""Typed configuration: dataclass schemas, strict YAML loading and dotted overrides."""

from components.config.loader import apply_overrides, config_from_dict, config_to_dict, load_yaml_config
from components.config.schema import (
    LOSS_PRESETS,
    MODEL_PRESETS,
    BackboneWeights,
    CorrvosConfig,
    DatasetSource,
    EvaluateConfig,
    InferenceConfig,
    LossConfig,
    ModelConfig,
    PipelineConfig,
    PretrainConfig,
    ProbeConfig,
    StageConfig,
    StorageConfig,
    TrackingConfig,
    TuneConfig,
)

__all__ = [
    "LOSS_PRESETS",
    "MODEL_PRESETS",
    "BackboneWeights",
    "CorrvosConfig",
    "DatasetSource",
    "EvaluateConfig",
    "InferenceConfig",
    "LossConfig",
    "ModelConfig",
    "PipelineConfig",
    "PretrainConfig",
    "ProbeConfig",
    "StageConfig",
    "StorageConfig",
    "TrackingConfig",
    "TuneConfig",
    "apply_overrides",
    "config_from_dict",
    "config_to_dict",
    "load_yaml_config",
]
