"""Config sections of the data plane: frozen, typed and strict, like `components.config.schema`.

Defaults are the released recipes (METHOD_REFERENCE.md §4.2, §4.3, §4.5); every schedule is a
fraction of the stage's iterations, so a short run switches at the same relative points.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

SAMPLER_PRESETS: dict[str, dict[str, Any]] = {
    # STCN main training as the correspondence repo runs it: 3 frames, 2 objects, skips 5/10/15/5.
    "stcn": {"rule": "stcn", "num_frames": 3, "max_objects": 2, "skip_switch_at": (0.1, 0.3, 0.8)},
    # XMem: 8 frames grown around chosen ones, 3 objects, back to skip 5 at 90%.
    "xmem": {"rule": "xmem", "num_frames": 8, "max_objects": 3, "skip_switch_at": (0.1, 0.3, 0.9)},
}


@dataclass(frozen=True)
class IngestConfig:
    """How `corrvos ingest` writes a dataset."""

    short_side: int | None = None  # downscale frames (area) and masks (nearest); None keeps source bytes
    jpeg_quality: int = 90  # only for frames that are re-encoded
    on_error: Literal["fail", "skip"] = "fail"
    shard_mb: int = 256
    row_group_mb: int = 4
    engine: Literal["ray", "threads"] = "ray"
    workers: int | None = None  # parallel readers; None = every CPU

    def __post_init__(self) -> None:
        if self.short_side is not None and self.short_side < 16:
            raise ValueError("short_side must be >= 16")
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError("jpeg_quality must lie in [1, 100]")
        if self.shard_mb < 1 or self.row_group_mb < 1:
            raise ValueError("shard_mb and row_group_mb must be >= 1")
        if self.workers is not None and self.workers < 1:
            raise ValueError(f"workers must be >= 1 (or null for every CPU), got {self.workers}")


@dataclass(frozen=True)
class SamplerConfig:
    """Which frames and objects make a training clip; the max skip follows a progress curriculum."""

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = SAMPLER_PRESETS

    preset: str = "stcn"
    rule: Literal["stcn", "xmem"] = "stcn"
    num_frames: int = 3
    static_num_frames: int = 3  # pseudo-videos from static pairs: 3 frames for STCN and XMem alike
    max_objects: int = 2
    max_skip: tuple[int, ...] = (5, 10, 15, 5)  # in source frames; divided by the annotation interval
    skip_switch_at: tuple[float, ...] = (0.1, 0.3, 0.8)  # progress fractions where max_skip moves on
    reverse_prob: float = 0.5
    max_tries: int = 5  # fresh augmentations tried when the crop leaves frame 0 without objects
    mode: Literal["auto", "video", "static"] = "auto"  # auto: static datasets give pseudo-videos

    def __post_init__(self) -> None:
        if min(self.num_frames, self.static_num_frames, self.max_objects, self.max_tries) < 1:
            raise ValueError("num_frames, static_num_frames, max_objects and max_tries must be >= 1")
        if not self.max_skip or min(self.max_skip) < 1:
            raise ValueError("max_skip needs at least one value, all >= 1")
        if len(self.skip_switch_at) != len(self.max_skip) - 1:
            raise ValueError("skip_switch_at needs one fraction fewer than max_skip has values")
        if list(self.skip_switch_at) != sorted(self.skip_switch_at) or not all(0 <= p <= 1 for p in self.skip_switch_at):
            raise ValueError("skip_switch_at must be ascending fractions in [0, 1]")
        if not 0.0 <= self.reverse_prob <= 1.0:
            raise ValueError("reverse_prob must lie in [0, 1]")


@dataclass(frozen=True)
class VideoAugmentConfig:
    """STCN video augmentation (§4.3): shared flip + resized crop + colour, per-frame affine + colour."""

    crop_size: int = 384
    hflip_prob: float = 0.5
    crop_scale: tuple[float, float] = (0.36, 1.0)  # area fraction of the frame
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    color: tuple[float, float, float, float] = (0.1, 0.03, 0.03, 0.0)  # brightness, contrast, saturation, hue
    grayscale_prob: float = 0.05
    frame_rotation: float = 15.0  # degrees, per frame
    frame_shear: float = 10.0  # degrees, per frame
    frame_color: tuple[float, float, float, float] = (0.01, 0.01, 0.01, 0.0)
    plain_after: float = 1.0  # progress from which per-frame rotation/shear stop (XMem's fine-tune tail)

    def __post_init__(self) -> None:
        _check_common(self.crop_size, self.hflip_prob, self.grayscale_prob)
        if not 0.0 < self.crop_scale[0] <= self.crop_scale[1] <= 1.0:
            raise ValueError("crop_scale must satisfy 0 < low <= high <= 1")
        _check_span("crop_ratio", self.crop_ratio)
        _check_non_negative(frame_rotation=self.frame_rotation, frame_shear=self.frame_shear,
                            color=min(self.color), frame_color=min(self.frame_color))
        if not 0.0 <= self.plain_after <= 1.0:
            raise ValueError(f"plain_after must lie in [0, 1], got {self.plain_after}")


@dataclass(frozen=True)
class StaticAugmentConfig:
    """Static pseudo-video augmentation (§4.2): shared scale/flip/colour, per-frame affine, thin-plate warp."""

    crop_size: int = 384
    hflip_prob: float = 0.5
    scale: tuple[float, float] = (0.8, 1.5)  # shared
    color: tuple[float, float, float, float] = (0.1, 0.05, 0.05, 0.05)  # shared
    grayscale_prob: float = 0.05
    frame_rotation: float = 20.0
    frame_scale: tuple[float, float] = (0.9, 1.1)
    frame_shear: float = 10.0
    frame_color: tuple[float, float, float, float] = (0.1, 0.05, 0.05, 0.0)
    tps_prob: float = 0.33
    tps_points: int = 12
    tps_sigma: float = 0.02  # displacement std as a fraction of the crop size

    def __post_init__(self) -> None:
        _check_common(self.crop_size, self.hflip_prob, self.grayscale_prob)
        if not 0.0 <= self.tps_prob <= 1.0 or self.tps_points < 3:
            raise ValueError("tps_prob must lie in [0, 1] and tps_points be >= 3")
        _check_span("scale", self.scale)
        _check_span("frame_scale", self.frame_scale)
        _check_non_negative(frame_rotation=self.frame_rotation, frame_shear=self.frame_shear, tps_sigma=self.tps_sigma,
                            color=min(self.color), frame_color=min(self.frame_color))


@dataclass(frozen=True)
class LoaderConfig:
    """The per-worker loader: decode threads, batches built ahead, and two memory caches."""

    num_workers: int = 2
    prefetch_batches: int = 2
    cache_mb: int = 1024  # encoded videos (JPEG/PNG bytes) of this worker's share
    decoded_cache_mb: int = 512  # decoded frames and masks; 0 decodes every sampled frame afresh
    # The decoded cache switches itself off (and frees its memory) once it has turned over its whole size
    # with fewer hits per lookup than this: the share is far bigger than the cache (DAVIS, YouTube-VOS), so
    # keeping each frame only to evict it unread costs time. 0 keeps it on whatever its hit rate.
    decoded_cache_min_hit_rate: float = 0.05

    def __post_init__(self) -> None:
        if self.num_workers < 0 or self.prefetch_batches < 1 or min(self.cache_mb, self.decoded_cache_mb) < 0:
            raise ValueError("num_workers >= 0, prefetch_batches >= 1 and cache sizes >= 0 are required")
        if not 0.0 <= self.decoded_cache_min_hit_rate <= 1.0:
            raise ValueError("decoded_cache_min_hit_rate must lie in [0, 1]")


@dataclass(frozen=True)
class DataConfig:
    """The `data:` section: sources, ingestion, sampling, augmentation and loading."""

    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    augment: VideoAugmentConfig = field(default_factory=VideoAugmentConfig)
    static_augment: StaticAugmentConfig = field(default_factory=StaticAugmentConfig)
    loader: LoaderConfig = field(default_factory=LoaderConfig)


def _check_common(crop_size: int, hflip_prob: float, grayscale_prob: float) -> None:
    if crop_size < 16:
        raise ValueError("crop_size must be >= 16")
    if not (0.0 <= hflip_prob <= 1.0 and 0.0 <= grayscale_prob <= 1.0):
        raise ValueError("probabilities must lie in [0, 1]")


def _check_span(name: str, span: tuple[float, float]) -> None:
    """A (low, high) range of positive factors, low <= high."""
    if len(span) != 2 or not 0.0 < span[0] <= span[1]:
        raise ValueError(f"{name} must satisfy 0 < low <= high, got {list(span)}")


def _check_non_negative(**values: float) -> None:
    """Magnitudes (degrees, jitter strengths, sigmas) cannot be negative."""
    for name, value in values.items():
        if not value >= 0:  # also refuses NaN
            raise ValueError(f"{name} must be >= 0, got {value}")
