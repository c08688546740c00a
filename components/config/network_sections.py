"""Config sections of the network and how it is scored: `model`, `loss`, `inference` (with their named presets
from METHOD.md). Strict frozen dataclasses; `components.config.schema` composes them into the whole config."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from components.config.ranges import (
    AT_LEAST_1,
    FRACTION,
    NON_NEGATIVE,
    Rule,
    at_least,
    between,
    check_order,
    check_ranges,
    each,
    optional,
)


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
        "batchnorm": "frozen",
    },
    # The paper's XMem (METHOD_REFERENCE §5.2): STCN's encoders plus shrinkage/selection keys and a 64-d sensory memory.
    "xmem": {
        "name": "xmem",
        "key_backbone": "resnet50",
        "value_backbone": "resnet18",
        "backbone_width": 64,
        "key_dim": 64,
        "value_dim": 512,
        "hidden_dim": 64,
        "decoder_dims": (512, 256, 256),
        "batchnorm": "frozen",
    },
    # Small enough to train on a 2-core CPU: ResNet-18 keys, half-width trunks, 128-d values.
    "small": {
        "key_backbone": "resnet18",
        "value_backbone": "resnet18",
        "backbone_width": 32,
        "key_dim": 64,
        "value_dim": 128,
        "decoder_dims": (128, 64, 64),
        "hidden_dim": 32,  # XMem's sensory memory (unused by STCN)
        "batchnorm": "batch",  # trained from scratch on a CPU: frozen BN at init would be no normalisation
    },
}


@dataclass(frozen=True)
class ModelConfig:
    """Network shape. `name` picks the base: `stcn` (§5.1) or `xmem` (§5.2); presets give the sizes.

    `decoder_entry`: `fusion` = released correspondence code, `stcn` = original (STCN only).
    `batchnorm: frozen` is STCN's (ImageNet-initialised trunks); `batch` uses batch statistics in
    training, for trunks trained from scratch. `hidden_dim`, `deep_update_prob` and
    `num_ref_frames` are XMem's: its sensory memory width, the chance a memory frame's value
    encoding also refreshes that memory in training, and the memory frames a training frame reads.
    `output_stride`: 16 is the papers' key/value grid; 8 dilates layer3 of both trunks instead of
    striding it, for a grid twice as fine at ~1.5x the training cost (the same parameters).
    """

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = MODEL_PRESETS

    name: Literal["stcn", "xmem"] = "stcn"
    preset: str = "stcn"
    key_backbone: Literal["resnet18", "resnet50"] = "resnet50"
    value_backbone: Literal["resnet18", "resnet50"] = "resnet18"
    backbone_width: int = 64
    output_stride: Literal[8, 16] = 16
    key_dim: int = 64
    value_dim: int = 512
    decoder_dims: tuple[int, int, int] = (512, 256, 256)
    decoder_entry: Literal["fusion", "stcn"] = "fusion"
    batchnorm: Literal["frozen", "batch"] = "frozen"
    head_dim: int = 64
    single_object: bool = False
    hidden_dim: int = 64
    deep_update_prob: float = 0.2
    num_ref_frames: int = 3
    backbone_weights: BackboneWeights = field(default_factory=BackboneWeights)

    def __post_init__(self) -> None:
        sizes = ("backbone_width", "key_dim", "value_dim", "head_dim", "hidden_dim", "num_ref_frames")
        check_ranges(self, "model", {**dict.fromkeys(sizes, AT_LEAST_1), "decoder_dims": each(AT_LEAST_1),
                                     "deep_update_prob": FRACTION})


LOSS_PRESETS: dict[str, dict[str, Any]] = {
    "released": {"pcl_weight": 0.2, "cross_view_weight": 0.04, "ocl_weight": 0.0},
    "poster": {"pcl_weight": 0.2, "cross_view_weight": 0.0, "ocl_weight": 0.1},
    "baseline": {"pcl_weight": 0.0, "cross_view_weight": 0.0, "ocl_weight": 0.0},
}

WHOLE_ITERATION = Rule(lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0
                       and float(v).is_integer(),
                       "a whole number of iterations >= 0 (for stage fractions set loss.schedule_unit: fraction)")


@dataclass(frozen=True)
class LossConfig:
    """Loss weights, schedules and the named departures from the released objective (docs/objective.md).

    The defaults are the released objective (VOS_Correspondence, STCN, XMem): schedules in iterations
    (`schedule_unit: iterations`, the 0-based iteration of the stage: ramp 30K -> 90K, bootstrapping
    20K -> 70K), `schedule_unit: fraction` states the same four numbers as fractions of a stage.
    Departures, each off unless a config turns it on: `correspondence_log: exact` (plain CE instead of
    the released clipped `-log(softmax + 1e-8)`), `pseudo_label: own_clip` (argmax over the own clip's
    similarities instead of the released masked softmax), `bootstrap_scope: batch` (top-p over the batch's
    pixels and every class slot instead of per clip over its own classes). `dice_form` picks the
    released Dice (`released`, background included) or XMem's (`xmem`, objects only).
    """

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = LOSS_PRESETS

    preset: str = "released"
    seg_weight: float = 1.0
    dice_weight: float = 0.0
    dice_form: Literal["released", "xmem"] = "released"
    pcl_weight: float = 0.2
    cross_view_weight: float = 0.04
    ocl_weight: float = 0.0
    schedule_unit: Literal["iterations", "fraction"] = "iterations"
    ramp_start: float = 30_000.0
    ramp_end: float = 90_000.0
    bootstrap_start: float = 20_000.0
    bootstrap_end: float = 70_000.0
    bootstrap_top_p: float = 0.15
    bootstrap_scope: Literal["clip", "batch"] = "clip"
    correspondence_log: Literal["clipped", "exact"] = "clipped"
    pseudo_label: Literal["released", "own_clip"] = "released"
    anchor_grid: int = 8
    cross_view_grid: int = 4

    def __post_init__(self) -> None:
        weights = ("seg_weight", "dice_weight", "pcl_weight", "cross_view_weight", "ocl_weight")
        schedule = ("ramp_start", "ramp_end", "bootstrap_start", "bootstrap_end")
        position = FRACTION if self.schedule_unit == "fraction" else WHOLE_ITERATION
        check_ranges(self, "loss", {**dict.fromkeys(weights, NON_NEGATIVE), **dict.fromkeys(schedule, position),
                                    "bootstrap_top_p": between(0, 1, low_open=True),
                                    "anchor_grid": AT_LEAST_1, "cross_view_grid": AT_LEAST_1})
        check_order("loss", "ramp_start", self.ramp_start, "ramp_end", self.ramp_end)
        check_order("loss", "bootstrap_start", self.bootstrap_start, "bootstrap_end", self.bootstrap_end)

    @property
    def uses_correspondence(self) -> bool:
        """True when any correspondence term has weight, i.e. view B and head g are needed."""
        return max(self.pcl_weight, self.cross_view_weight, self.ocl_weight) > 0.0

    def in_fractions(self, stage_iterations: int) -> LossConfig:
        """The same schedules as fractions of a stage of `stage_iterations`, for runs that shorten the stage
        (tune trials): a 600-iteration trial then ramps where the full stage would, scaled down."""
        if self.schedule_unit == "fraction":
            return self
        keys = ("ramp_start", "ramp_end", "bootstrap_start", "bootstrap_end")
        scaled = {k: min(getattr(self, k) / stage_iterations, 1.0) for k in keys}
        return dataclasses.replace(self, schedule_unit="fraction", **scaled)

    @property
    def departures(self) -> tuple[str, ...]:
        """The options set away from the released objective, as `key=value` (empty for the released one)."""
        released = {"correspondence_log": "clipped", "pseudo_label": "released", "bootstrap_scope": "clip"}
        return tuple(f"{k}={getattr(self, k)}" for k, v in released.items() if getattr(self, k) != v)


@dataclass(frozen=True)
class XMemMemoryConfig:
    """XMem's inference memory (§5.2): working memory of T_min..T_max frames, long-term prototypes.

    When working memory passes `work_max_frames`, its oldest frames are consolidated into
    `num_prototypes` prototypes (chosen by usage) in long-term memory, which keeps at most
    `long_term_max` elements by evicting the least used. Memory stays bounded on any video length.
    """

    top_k: int | None = 30
    work_min_frames: int = 5
    work_max_frames: int = 10
    long_term_max: int = 10_000
    num_prototypes: int = 128

    def __post_init__(self) -> None:
        check_ranges(self, "inference.xmem", {"top_k": optional(AT_LEAST_1)})
        if not 1 <= self.work_min_frames < self.work_max_frames:
            raise ValueError("inference.xmem: need 1 <= work_min_frames < work_max_frames")
        if not 1 <= self.num_prototypes < self.long_term_max:
            raise ValueError("inference.xmem: need 1 <= num_prototypes < long_term_max")


INFERENCE_PRESETS: dict[str, dict[str, Any]] = {
    # corrvos's defaults (the field defaults below).
    "corrvos": {},
    # The official evaluation scripts' defaults, exactly: STCN eval_davis.py (top-k 20, memory every 5, no
    # last-frame entry, fp32) and XMem eval.py with --size -1 --benchmark (top-k 30, memory every 5,
    # working memory 5..10 frames, 128 prototypes, 10,000 long-term elements, fp32). docs/evaluation.md
    # lists each difference from the corrvos defaults and its measured effect.
    "official": {
        "memory_every": 5, "top_k": 20, "include_last": False, "max_memory_frames": None,
        "max_short_side": None, "min_short_side": None, "precision": "fp32",
        "padding": "zero", "consolidate_at": "reach", "usage_counting": "official",
        "xmem": {"top_k": 30, "work_min_frames": 5, "work_max_frames": 10, "long_term_max": 10_000,
                 "num_prototypes": 128},
    },
}


@dataclass(frozen=True)
class InferenceConfig:
    """Propagation settings (METHOD_REFERENCE §5.1 "Inference", §6); defaults are STCN's DAVIS ones.

    `top_k`, `include_last` and `max_memory_frames` are STCN's memory; XMem reads its own `xmem`
    section and `consolidate_at` / `usage_counting`. `memory_every`, `max_short_side`,
    `min_short_side`, `precision` and `padding` apply to both. `preset: official` gives the official
    evaluation scripts' settings; explicit keys override a preset's.

    `padding`: how frames are padded to a multiple of 16: `replicate` repeats the edge pixels (corrvos);
    `zero` pads the ImageNet-normalised frame with zeros, as the official code does.
    `consolidate_at`: XMem consolidates working memory when it `exceed`s `xmem.work_max_frames` frames
    (corrvos) or when it `reach`es it (official: one memory frame earlier, so later frames read
    different memory on videos longer than ~50 frames).
    `usage_counting`: how XMem's long-term memory counts element usage. `corrvos`: prototypes start
    with the usage of the elements they average, and long-term memory over `xmem.long_term_max` evicts
    its least-used elements (old and new) after a consolidation; `official`: every new element starts
    unused with a life of 1e-7 reads, and long-term memory at or above `long_term_max - num_prototypes`
    first keeps only its elements used more than the least-used surplus, then takes the new prototypes.
    """

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = INFERENCE_PRESETS

    preset: str = "corrvos"
    memory_every: int = 5
    top_k: int | None = 20
    include_last: bool = False
    max_memory_frames: int | None = None
    max_short_side: int | None = None  # down-scale frames whose short side is longer
    min_short_side: int | None = None  # up-scale frames whose short side is shorter: a finer key grid on small videos
    precision: Literal["auto", "fp32", "bf16"] = "auto"  # auto: bf16 on GPUs with it and CPUs with AVX512-BF16/AMX
    padding: Literal["replicate", "zero"] = "replicate"
    consolidate_at: Literal["exceed", "reach"] = "exceed"
    usage_counting: Literal["corrvos", "official"] = "corrvos"
    xmem: XMemMemoryConfig = field(default_factory=XMemMemoryConfig)

    def __post_init__(self) -> None:
        if self.preset not in self.PRESETS:
            raise ValueError(f"inference.preset: unknown preset {self.preset!r} (choose from {sorted(self.PRESETS)})")
        sides = dict.fromkeys(("max_short_side", "min_short_side"), optional(at_least(16)))
        check_ranges(self, "inference", {"memory_every": AT_LEAST_1, "top_k": optional(AT_LEAST_1),
                                         "max_memory_frames": optional(at_least(2)),  # the first frame and one more
                                         **sides})
        if None not in (self.min_short_side, self.max_short_side) and self.min_short_side > self.max_short_side:
            raise ValueError("inference.min_short_side must not exceed inference.max_short_side")
