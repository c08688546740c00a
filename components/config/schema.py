"""The config schema: one frozen dataclass per section, with the named presets of METHOD.md.

Later stages (data, train, evaluate, pipeline) add their sections here; every section is strict.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal


@dataclass(frozen=True)
class BackboneWeights:
    """ImageNet weights (torchvision state-dict files) for the trunks; local path or fsspec URI."""

    key_encoder: str | None = None
    value_encoder: str | None = None


MODEL_PRESETS: dict[str, dict[str, Any]] = {
    # The paper's STCN (METHOD_REFERENCE §5.1): ResNet-50 keys, ResNet-18 values, 512-d values.
    "stcn": {
        "key_backbone": "resnet50",
        "value_backbone": "resnet18",
        "backbone_width": 64,
        "key_dim": 64,
        "value_dim": 512,
        "decoder_dims": (512, 256, 256),
    },
    # Small enough to train on a 2-core CPU: ResNet-18 keys, half-width trunks, 128-d values.
    "small": {
        "key_backbone": "resnet18",
        "value_backbone": "resnet18",
        "backbone_width": 32,
        "key_dim": 64,
        "value_dim": 128,
        "decoder_dims": (128, 64, 64),
    },
}


@dataclass(frozen=True)
class ModelConfig:
    """Network shape. `decoder_entry`: `fusion` = released correspondence code, `stcn` = original."""

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = MODEL_PRESETS

    name: Literal["stcn"] = "stcn"
    preset: str = "stcn"
    key_backbone: Literal["resnet18", "resnet50"] = "resnet50"
    value_backbone: Literal["resnet18", "resnet50"] = "resnet18"
    backbone_width: int = 64
    key_dim: int = 64
    value_dim: int = 512
    decoder_dims: tuple[int, int, int] = (512, 256, 256)
    decoder_entry: Literal["fusion", "stcn"] = "fusion"
    head_dim: int = 64
    single_object: bool = False
    backbone_weights: BackboneWeights = field(default_factory=BackboneWeights)


LOSS_PRESETS: dict[str, dict[str, Any]] = {
    "released": {"pcl_weight": 0.2, "cross_view_weight": 0.04, "ocl_weight": 0.0},
    "poster": {"pcl_weight": 0.2, "cross_view_weight": 0.0, "ocl_weight": 0.1},
    "baseline": {"pcl_weight": 0.0, "cross_view_weight": 0.0, "ocl_weight": 0.0},
}


@dataclass(frozen=True)
class LossConfig:
    """Loss weights and schedules; every schedule is a fraction of the stage's iterations."""

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = LOSS_PRESETS

    preset: str = "released"
    seg_weight: float = 1.0
    dice_weight: float = 0.0
    pcl_weight: float = 0.2
    cross_view_weight: float = 0.04
    ocl_weight: float = 0.0
    ramp_start: float = 0.2
    ramp_end: float = 0.6
    bootstrap_start: float = 0.13
    bootstrap_end: float = 0.47
    bootstrap_top_p: float = 0.15
    anchor_grid: int = 8
    cross_view_grid: int = 4

    def __post_init__(self) -> None:
        if not 0.0 <= self.ramp_start <= self.ramp_end <= 1.0:
            raise ValueError("loss.ramp_start <= loss.ramp_end must lie in [0, 1]")
        if not 0.0 <= self.bootstrap_start <= self.bootstrap_end <= 1.0:
            raise ValueError("loss.bootstrap_start <= loss.bootstrap_end must lie in [0, 1]")
        if not 0.0 < self.bootstrap_top_p <= 1.0:
            raise ValueError("loss.bootstrap_top_p must lie in (0, 1]")

    @property
    def uses_correspondence(self) -> bool:
        """True when any correspondence term has weight, i.e. view B and head g are needed."""
        return max(self.pcl_weight, self.cross_view_weight, self.ocl_weight) > 0.0


@dataclass(frozen=True)
class InferenceConfig:
    """Propagation settings (METHOD_REFERENCE §5.1 "Inference", §6); defaults are STCN's DAVIS ones."""

    memory_every: int = 5
    top_k: int | None = 20
    include_last: bool = False
    max_memory_frames: int | None = None
    max_short_side: int | None = None
    precision: Literal["auto", "fp32", "bf16"] = "auto"

    def __post_init__(self) -> None:
        if self.memory_every < 1:
            raise ValueError("inference.memory_every must be >= 1")
        if self.top_k is not None and self.top_k < 1:
            raise ValueError("inference.top_k must be >= 1 (or null for the full softmax)")
        if self.max_memory_frames is not None and self.max_memory_frames < 2:
            raise ValueError("inference.max_memory_frames must be >= 2 (the first frame and one more)")
        if self.max_short_side is not None and self.max_short_side < 16:
            raise ValueError("inference.max_short_side must be >= 16")


@dataclass(frozen=True)
class CorrvosConfig:
    """The whole config file."""

    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    inference: InferenceConfig = field(default_factory=InferenceConfig)
