"""Settings of the correspondence probe (label propagation from keys alone, point correspondence)."""

from __future__ import annotations

from dataclasses import dataclass


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
        if self.context_frames < 0:
            raise ValueError("probe.context_frames must be >= 0")
        if self.top_k < 1:
            raise ValueError("probe.top_k must be >= 1")
        if self.radius is not None and self.radius <= 0:
            raise ValueError("probe.radius must be > 0 feature cells (or null for no limit)")
        if not self.temperature > 0:
            raise ValueError("probe.temperature must be > 0")
        if self.max_short_side is not None and self.max_short_side < 16:
            raise ValueError("probe.max_short_side must be >= 16")
        if not self.radii_px or any(r <= 0 for r in self.radii_px):
            raise ValueError("probe.radii_px must be a non-empty list of positive pixel distances")
        if not self.frame_gaps or any(g < 1 for g in self.frame_gaps) or len(set(self.frame_gaps)) != len(self.frame_gaps):
            raise ValueError("probe.frame_gaps must be a non-empty list of distinct gaps >= 1")
        if self.points_per_object < 1 or self.reference_every < 1:
            raise ValueError("probe.points_per_object and probe.reference_every must be >= 1")
        if self.max_videos is not None and self.max_videos < 1:
            raise ValueError("probe.max_videos must be >= 1 (or null for all)")
