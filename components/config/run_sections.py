"""Config sections of how a run is carried out: training stages (`pretrain`, `train`), `tracking`, `storage`,
`pipeline` (its dataset sources), `evaluate`, `tune` and `probe`. Strict frozen dataclasses; `components.config.schema`
composes them into the whole config."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from components.config.ranges import (
    AT_LEAST_1,
    FRACTION,
    NON_NEGATIVE,
    POSITIVE,
    Rule,
    at_least,
    between,
    check_ranges,
    optional,
)
from components.config.roles import REPORTING_ROLE, steering_test_clash
from components.data.selection import VideoSelection


STAGE_PRESETS: dict[str, dict[str, Any]] = {
    # The correspondence repo's stage 0 / stage 3 (METHOD_REFERENCE §4.1): 8 clips per GPU on 2 GPUs,
    # AdamW with layer-wise groups, lr 5e-5 dropped x0.1 at iteration 250K of 300K and 125K of 150K
    # (its MultiStepLR milestones, stepped once per iteration).
    "stcn-s0": {"iterations": 300_000, "batch_size": 16, "learning_rate": 5e-5, "lr_drop_at": (250_000,),
                "lr_drop_unit": "iterations", "optimizer": "adamw", "weight_decay": 1e-7, "layerwise_lr": True},
    "stcn-s3": {"iterations": 150_000, "batch_size": 16, "learning_rate": 5e-5, "lr_drop_at": (125_000,),
                "lr_drop_unit": "iterations", "optimizer": "adamw", "weight_decay": 1e-7, "layerwise_lr": True},
    # Original STCN (hkchengrex/STCN util/hyper_para.py): Adam, one lr, 2 GPUs; drops at 150K of 300K, 125K of 150K.
    "stcn-original-s0": {"iterations": 300_000, "batch_size": 16, "learning_rate": 1e-5, "lr_drop_at": (150_000,),
                         "lr_drop_unit": "iterations", "optimizer": "adam", "weight_decay": 1e-7, "layerwise_lr": False},
    "stcn-original-s3": {"iterations": 150_000, "batch_size": 8, "learning_rate": 1e-5, "lr_drop_at": (125_000,),
                         "lr_drop_unit": "iterations", "optimizer": "adam", "weight_decay": 1e-7, "layerwise_lr": False},
    # XMem (METHOD_REFERENCE §4.5, hkchengrex/XMem): AdamW wd 0.05, lr 1e-5, effective batch over 2 GPUs.
    # s0 never drops; s3 is 100K + a 10K fine-tune tail (set data.augment.plain_after: 0.9090909090909091, i.e. 100000/110000), dropped at 80K.
    "xmem-s0": {"iterations": 150_000, "batch_size": 16, "learning_rate": 1e-5, "lr_drop_at": (),
                "lr_drop_unit": "iterations", "optimizer": "adamw", "weight_decay": 0.05, "layerwise_lr": False},
    "xmem-s3": {"iterations": 110_000, "batch_size": 8, "learning_rate": 1e-5, "lr_drop_at": (80_000,),
                "lr_drop_unit": "iterations", "optimizer": "adamw", "weight_decay": 0.05, "layerwise_lr": False},
    # Minutes on a 2-core CPU with the `small` model and synthetic videos: drops as fractions of the stage.
    "demo": {"iterations": 300, "batch_size": 4, "learning_rate": 1e-3, "lr_drop_at": (0.8,), "lr_drop_unit": "fraction",
             "optimizer": "adamw", "weight_decay": 1e-7, "layerwise_lr": False, "checkpoint_every": 100,
             "log_every": 10, "image_every": 100},
}


def first_iteration_reaching(fraction: float, iterations: int) -> int:
    """The first 0-based iteration `s` of a stage of `iterations` whose progress `s / iterations` reaches `fraction`.

    Compared in the same floating point as the progress itself, so a fraction lands where progress meets it.
    """
    step = min(max(math.ceil(fraction * iterations), 0), iterations)
    while step > 0 and (step - 1) / iterations >= fraction:
        step -= 1
    while step < iterations and step / iterations < fraction:
        step += 1
    return step


def drop_points_rule(unit: str, iterations: int, section: str) -> Rule:
    """What a stage's `lr_drop_at` must hold in `unit`; the error names the unit key, so neither is ambiguous."""
    if unit == "iterations":  # whole 0-based iterations; a drop past the stage's end would never happen
        return Rule(lambda drops: all(_whole(v) and 0 <= v <= iterations for v in drops),
                    f"a list of whole iterations in [0, {iterations}] ({section}.lr_drop_unit is iterations; "
                    f"for stage fractions set {section}.lr_drop_unit: fraction)")
    return Rule(lambda drops: all(FRACTION.allows(v) for v in drops),
                f"a list of stage fractions in [0, 1] ({section}.lr_drop_unit is fraction; "
                f"for iterations set {section}.lr_drop_unit: iterations)")


def _whole(value: Any) -> bool:
    """A finite number with no fractional part (bools are not numbers here)."""
    return (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            and float(value).is_integer())


@dataclass(frozen=True)
class StageConfig:
    """One training stage (pretrain or train): schedule, optimiser, workers, durability."""

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = STAGE_PRESETS
    SECTION: ClassVar[str] = "train"  # the config section, for error messages (PretrainConfig: pretrain)

    preset: str = "demo"
    iterations: int = 300
    batch_size: int = 4  # global, over all workers
    learning_rate: float = 1e-3
    # Where the lr is multiplied by lr_gamma, in `lr_drop_unit`: `iterations` (0-based iterations of the stage,
    # the released MultiStepLR milestones) or `fraction` (of the stage's iterations, for short runs)
    lr_drop_at: tuple[float, ...] = (0.8,)
    lr_drop_unit: Literal["iterations", "fraction"] = "fraction"
    lr_gamma: float = 0.1
    lr_schedule: Literal["step", "cosine"] = "step"  # cosine: smooth decay to the step schedule's final lr
    optimizer: Literal["adam", "adamw"] = "adamw"
    weight_decay: float = 1e-7
    layerwise_lr: bool = False
    grad_clip: float | None = None  # max gradient norm; None: unclipped, as every official trainer (a departure when set)
    freeze_at: int = 0  # trunk parts kept fixed from the input: 0 none, 1 stem, 2 stem + layer1 (detectron2's FREEZE_AT)
    precision: Literal["auto", "fp32", "bf16"] = "auto"  # auto: bf16 autocast where the device has native bf16
    seed: int = 14159265
    num_workers: int = 1
    use_gpu: bool = False
    cpus_per_worker: int = 1
    max_failures: int = 2
    checkpoint_every: int = 100
    keep_checkpoints: int = 2
    log_every: int = 10
    image_every: int = 100
    fail_at_step: int | None = None  # fault injection for tests: rank 0 raises once at this step

    def __post_init__(self) -> None:
        counts = ("iterations", "batch_size", "num_workers", "cpus_per_worker", "checkpoint_every", "keep_checkpoints",
                  "log_every", "image_every")
        check_ranges(self, self.SECTION, {
            **dict.fromkeys(counts, AT_LEAST_1), "learning_rate": POSITIVE,
            "lr_drop_at": drop_points_rule(self.lr_drop_unit, self.iterations, self.SECTION),
            "lr_gamma": between(0, 1, low_open=True), "weight_decay": NON_NEGATIVE, "grad_clip": optional(NON_NEGATIVE),
            "freeze_at": between(0, 4),  # trunk parts from the input
            "seed": at_least(0), "max_failures": at_least(0), "fail_at_step": optional(at_least(0))})
        if self.batch_size % self.num_workers:
            raise ValueError(f"{self.SECTION}.batch_size {self.batch_size} must divide evenly over "
                             f"{self.num_workers} workers")

    @property
    def lr_drop_steps(self) -> tuple[int, ...]:
        """The 0-based iterations from which each drop applies, sorted (a fraction: where progress first reaches it)."""
        if self.lr_drop_unit == "iterations":
            return tuple(sorted(int(v) for v in self.lr_drop_at))
        return tuple(sorted(first_iteration_reaching(v, self.iterations) for v in self.lr_drop_at))

    def in_fractions(self) -> StageConfig:
        """The same drops as fractions of this stage, for runs that shorten it (tune trials): a 600-iteration
        trial of a 150K stage dropping at 125K drops at iteration 500."""
        if self.lr_drop_unit == "fraction":
            return self
        return dataclasses.replace(self, lr_drop_unit="fraction",
                                   lr_drop_at=tuple(v / self.iterations for v in self.lr_drop_at))


@dataclass(frozen=True)
class PretrainConfig(StageConfig):
    """The `pretrain` stage: a StageConfig whose errors name `pretrain.*`."""

    SECTION: ClassVar[str] = "pretrain"


@dataclass(frozen=True)
class TrackingConfig:
    """MLflow: a local SQLite store by default, an http:// tracking server on clusters."""

    mlflow_uri: str = "sqlite:///runs/mlflow.db"
    experiment: str = "corrvos"
    registered_model: str | None = None  # None: corrvos-<model.name>, one registered model per base
    promote_margin: float = 0.0  # `promote` moves `champion` only when J&F beats the champion's by more than this

    def __post_init__(self) -> None:
        check_ranges(self, "tracking", {"promote_margin": NON_NEGATIVE})


@dataclass(frozen=True)
class StorageConfig:
    """Where every stage writes: a local folder or an fsspec URI such as s3://bucket/prefix."""

    root: str = "runs"
    options: dict[str, Any] = field(default_factory=dict)  # fsspec storage options (never logged)


@dataclass(frozen=True)
class DatasetSource:
    """One dataset the `ingest` stage makes, and which stages read it (`roles`).

    Roles: `pretrain` / `train` fit the weights, `val` steers (tune trials, validation curves), `test`
    only reports (evaluate, register, promote), `predict-only` is predicted and packed as the upload
    archive of the benchmark its kind names (no ground truth: YouTube-VOS / MOSE valid, DAVIS test-dev);
    a test dataset may hold no steering video (`components.config.roles`). `select` keeps a subset of
    the source's videos.
    """

    name: str
    kind: Literal["davis", "youtube-vos", "mose", "static", "synthetic"]
    source: str = ""  # folder or fsspec URI; for synthetic a spec such as "videos=32,frames=24,size=96,seed=0"
    roles: tuple[Literal["pretrain", "train", "val", "test", "predict-only"], ...] = ("train",)
    select: VideoSelection = field(default_factory=VideoSelection)
    split: str | None = None
    resolution: str | None = None
    short_side: int | None = None
    optional: bool = False  # a source folder that is missing is skipped instead of failing the pipeline
    repeat: int = 1  # times each video enters a training epoch (STCN: DAVIS x5 beside YouTube-VOS)
    # predict-only: write every frame from the first mask on, not only the frames the benchmark scores
    # (YouTube-VOS "all frames" submissions; MOSE and DAVIS test-dev score every frame anyway)
    all_frames: bool = False
    # test: a DAVIS db_info.yml (path or URI) whose per-sequence attributes give J&F per attribute
    attributes: str | None = None

    def __post_init__(self) -> None:
        # no section: the loader names the entry (pipeline.sources[i])
        check_ranges(self, "", {"repeat": AT_LEAST_1, "short_side": optional(at_least(16))})
        if not self.name or "/" in self.name or self.name.startswith("<"):
            raise ValueError(f"dataset name {self.name!r} must be non-empty, contain no '/' and not start with '<'")
        if not self.roles:
            raise ValueError(f"dataset {self.name!r}: roles must name at least one of pretrain, train, val, test, predict-only")
        if self.kind != "synthetic" and not self.source:
            raise ValueError(f"dataset {self.name!r}: source is required for kind {self.kind!r}")
        if "predict-only" in self.roles:
            if self.kind not in ("davis", "youtube-vos", "mose"):
                raise ValueError(f"dataset {self.name!r}: predict-only needs a benchmark kind (davis, youtube-vos or "
                                 f"mose), not {self.kind!r}")
            if self.short_side is not None:
                raise ValueError(f"dataset {self.name!r}: predict-only archives need the original resolution; "
                                 "remove short_side (inference.max_short_side resizes for the model only)")
        elif self.all_frames:
            raise ValueError(f"dataset {self.name!r}: all_frames applies to predict-only datasets only")
        if self.attributes is not None and "test" not in self.roles:
            raise ValueError(f"dataset {self.name!r}: attributes applies to test datasets only")


DEFAULT_SOURCES = (
    DatasetSource(name="synthetic-train", kind="synthetic", source="videos=48,frames=24,size=96,seed=0",
                  roles=("pretrain", "train")),
    DatasetSource(name="synthetic-val", kind="synthetic", source="videos=4,frames=20,size=96,seed=2000", roles=("val",)),
    DatasetSource(name="synthetic-test", kind="synthetic", source="videos=8,frames=20,size=96,seed=1000",
                  roles=("test",)),
)


@dataclass(frozen=True)
class PipelineConfig:
    """The DAG: its name (one state folder per name), the datasets it ingests, and whether it tunes."""

    name: str = "demo"
    sources: tuple[DatasetSource, ...] = DEFAULT_SOURCES
    tune: bool = False  # run `tune` before `train` and train with the best trial's settings
    ingest_engine: Literal["ray", "threads"] = "threads"
    # How many times a training stage that died of a retryable cause (worker or node loss, OOM kill)
    # is run again, resuming from its checkpoint; 0 never retries.
    stage_retries: int = 1
    # Start `tune` / `train` from this inference checkpoint (a path, an fsspec URI, or models:/NAME/VERSION
    # or models:/NAME@ALIAS, e.g. one `corrvos import-weights` wrote) instead of running `pretrain`.
    init_from: str | None = None

    def __post_init__(self) -> None:
        check_ranges(self, "pipeline", {"stage_retries": at_least(0)})
        if self.init_from is not None and not self.init_from.strip():
            raise ValueError("pipeline.init_from: empty; give a checkpoint path, URI or models:/ reference, or null")
        names = [s.name for s in self.sources]
        if len(set(names)) != len(names):
            raise ValueError("pipeline.sources: dataset names must be unique")
        for role in ("train", REPORTING_ROLE):
            if not any(role in s.roles for s in self.sources):
                raise ValueError(f"pipeline.sources: no dataset has role {role!r}")
        clash = steering_test_clash(self.sources)
        if clash:
            raise ValueError(f"pipeline.sources: {clash}")


@dataclass(frozen=True)
class EvaluateConfig:
    """The `evaluate` stage: how many validation videos, how many overlay reports."""

    max_videos: int | None = None
    overlays: int = 4  # sequences (the worst by J&F) whose overlay strips, GIFs and MP4s go to MLflow
    probe: bool = True  # also run the correspondence probe (section `probe`) and log probe_jf beside J&F
    validate_every: int | None = None  # `train` logs held-out J&F (val_jf) every this many iterations
    validate_videos: int = 4  # validation videos scored each time

    def __post_init__(self) -> None:
        check_ranges(self, "evaluate", {"max_videos": optional(AT_LEAST_1), "overlays": at_least(0),
                                        "validate_every": optional(AT_LEAST_1), "validate_videos": AT_LEAST_1})


DEFAULT_TUNE_SPACE: dict[str, Any] = {
    "loss.pcl_weight": {"loguniform": [0.05, 0.8]},
    "loss.cross_view_weight": {"loguniform": [0.005, 0.2]},
    "loss.ocl_weight": {"uniform": [0.0, 0.3]},
    "train.learning_rate": {"loguniform": [1.0e-4, 1.0e-3]},
}


@dataclass(frozen=True)
class TuneConfig:
    """Ray Tune over dotted config keys (`space`), ASHA on validation J&F reported during training."""

    space: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_TUNE_SPACE))
    num_samples: int = 8
    max_concurrent: int = 2
    iterations: int = 600  # training iterations per trial (the train stage's own count is kept for `train`)
    eval_every: int = 100  # a trial reports validation J&F every this many iterations
    val_videos: int = 4  # validation videos per report
    grace_period: int = 2  # ASHA: reports before a trial may be stopped
    reduction_factor: int = 2
    seed: int = 0
    cpus_per_trial: int = 1

    def __post_init__(self) -> None:
        counts = ("num_samples", "max_concurrent", "iterations", "eval_every", "val_videos", "grace_period",
                  "cpus_per_trial")
        check_ranges(self, "tune", {**dict.fromkeys(counts, AT_LEAST_1), "reduction_factor": at_least(2),
                                    "seed": at_least(0)})


@dataclass(frozen=True)
class ProbeConfig:
    """Defaults follow CRW's label propagation (Jabri et al. 2020), except the temperature.

    `temperature` divides the model's own similarity, STCN's -||k_m - k_q||^2 / sqrt(C_k) (L2, not
    cosine): 1.0 is the softmax the model was trained with (its memory read and the PCL/cross-view
    losses use these logits unscaled), so the probe measures the matching the model learned rather
    than one re-sharpened for it. CRW's 0.05-0.07 belongs to cosine similarities in [-1, 1].
    """

    context_frames: int = 20  # previous frames read besides the given (first) frames
    top_k: int = 10  # context pixels kept per query pixel, over all context frames together
    radius: float | None = 12.0  # feature cells; previous frames only (given frames are read whole, as in CRW)
    temperature: float = 1.0
    max_short_side: int | None = None  # down-scale frames whose short side is longer (None: full size)
    radii_px: tuple[int, ...] = (4, 8, 16)  # correspondence accuracy thresholds, full-size pixels
    points_per_object: int = 20  # query points drawn per object and reference frame
    frame_gaps: tuple[int, ...] = (1, 2, 4, 8, 16)  # reference -> target frame distances reported
    reference_every: int = 4  # reference frames 0, n, 2n, ... (each paired with reference + every gap)
    max_videos: int | None = None  # probe only the first N videos
    seed: int = 0  # point sampling

    def __post_init__(self) -> None:
        check_ranges(self, "probe", {"context_frames": at_least(0), "top_k": AT_LEAST_1,
                                     "radius": optional(POSITIVE),  # feature cells; null: no limit
                                     "temperature": POSITIVE, "max_short_side": optional(at_least(16)),
                                     "points_per_object": AT_LEAST_1, "reference_every": AT_LEAST_1,
                                     "max_videos": optional(AT_LEAST_1), "seed": at_least(0)})
        if not self.radii_px or any(r <= 0 for r in self.radii_px):
            raise ValueError("probe.radii_px must be a non-empty list of positive pixel distances")
        if not self.frame_gaps or any(g < 1 for g in self.frame_gaps) or len(set(self.frame_gaps)) != len(self.frame_gaps):
            raise ValueError("probe.frame_gaps must be a non-empty list of distinct gaps >= 1")
