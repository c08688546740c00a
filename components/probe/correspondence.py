"""Point correspondence accuracy on synthetic videos, whose generator knows where every pixel goes.

Query points are drawn per object in reference frames 0, n, 2n, ...; `track_points` gives each
one's true position and visibility in every frame. A query's key is sampled bilinearly from the
reference frame's key map at the point; its match in the frame `gap` later is the key cell with the
highest model similarity (no radius, no top-k: the raw best match), whose centre is mapped back to
full-size pixels. corr_acc@r: the fraction of visible points whose match lies less than r pixels
from the truth (TAP-Vid's strict <), per gap; the headline is the mean over gaps.

On a stride-16 grid a match can only land on a cell centre, so even perfect keys miss points lying
far from every centre: corr_ceiling@r is that ceiling, the same points scored with the cell nearest
to the truth (about 0.2 at 4 px on a 16 px grid, 1.0 from about 11.3 px).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from components.data.synthetic import SyntheticMotion, sample_points, track_points
from components.errors import DataError
from components.evaluation.videos import EvalVideo
from components.probe.config import ProbeConfig
from components.probe.keys import VideoKeys, as_key_encoder, encode_video

VOID = 255


@dataclass
class CorrespondenceTally:
    """Counts that add up across videos: visible query points, and those matched within r, per gap."""

    radii: tuple[int, ...]
    gaps: tuple[int, ...]
    visible: dict[int, int] = field(default_factory=dict)  # gap -> visible query points
    hits: dict[tuple[int, int], int] = field(default_factory=dict)  # (gap, r) -> matched within r
    ceiling: dict[tuple[int, int], int] = field(default_factory=dict)  # (gap, r) -> nearest cell within r

    @classmethod
    def empty(cls, config: ProbeConfig) -> "CorrespondenceTally":
        return cls(tuple(config.radii_px), tuple(config.frame_gaps))

    @property
    def points(self) -> int:
        return sum(self.visible.values())

    def add(self, other: "CorrespondenceTally") -> None:
        for gap, n in other.visible.items():
            self.visible[gap] = self.visible.get(gap, 0) + n
        for mine, theirs in ((self.hits, other.hits), (self.ceiling, other.ceiling)):
            for key, n in theirs.items():
                mine[key] = mine.get(key, 0) + n

    def count(self, gap: int, errors: np.ndarray, ceiling_errors: np.ndarray) -> None:
        """Add one reference/target pair: pixel errors of the matches and of the nearest cells, visible points only."""
        self.visible[gap] = self.visible.get(gap, 0) + len(errors)
        for r in self.radii:
            self.hits[(gap, r)] = self.hits.get((gap, r), 0) + int((errors < r).sum())
            self.ceiling[(gap, r)] = self.ceiling.get((gap, r), 0) + int((ceiling_errors < r).sum())

    def metrics(self) -> dict[str, float]:
        """{"corr_acc@8": mean over gaps, "corr_acc@8/gap4": ..., "corr_ceiling@8": ..., "corr_points": ...}.

        Gaps with no visible point are left out (of the mean too), so no value is NaN.
        """
        gaps = [g for g in self.gaps if self.visible.get(g, 0) > 0]
        out: dict[str, float] = {}
        for r in self.radii:
            per_gap = {g: self.hits.get((g, r), 0) / self.visible[g] for g in gaps}
            if per_gap:
                out[f"corr_acc@{r}"] = float(np.mean(list(per_gap.values())))
                out[f"corr_ceiling@{r}"] = float(np.mean([self.ceiling.get((g, r), 0) / self.visible[g] for g in gaps]))
            for g, value in per_gap.items():
                out[f"corr_acc@{r}/gap{g}"] = value
        out["corr_points"] = float(self.points)
        return out


def synthetic_motion(video: EvalVideo) -> SyntheticMotion | None:
    """The generator's motion carried by an ingested synthetic video (`extras["motion"]`), else None."""
    data = video.extras.get("motion") if video.extras else None
    if data is None:
        return None
    try:
        return SyntheticMotion.from_json(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"{video.name}: unreadable synthetic motion in extras ({exc})") from None


def full_masks(video: EvalVideo) -> np.ndarray:
    """T,H,W id masks of every frame; point tracks need each frame's mask for visibility."""
    missing = [i for i in range(len(video.frames)) if i not in video.ground_truth]
    if missing:
        raise DataError(f"{video.name}: frame {video.frame_names[missing[0]]} has no mask; "
                        "point correspondence needs every frame annotated")
    return np.stack([video.ground_truth[i] for i in range(len(video.frames))])


def video_correspondence(
    keys: VideoKeys, masks: np.ndarray, motion: SyntheticMotion, config: ProbeConfig, name: str = ""
) -> CorrespondenceTally:
    """Tally one video: points of every object in each reference frame, matched in reference + gap."""
    tally = CorrespondenceTally.empty(config)
    rng = np.random.default_rng([config.seed, zlib.crc32(name.encode())])
    frames = masks.shape[0]
    for ref in range(0, frames, config.reference_every):
        gaps = [g for g in config.frame_gaps if ref + g < frames]
        ids = [int(v) for v in np.unique(masks[ref]) if v not in (0, VOID)]
        if not gaps or not ids:
            continue
        points = np.concatenate([sample_points(masks, oid, config.points_per_object, rng, frame=ref) for oid in ids])
        tracks = track_points(motion, masks, points, frame=ref)
        query = sample_keys(keys.keys[ref], keys.pixels_to_grid(torch.from_numpy(points)))  # N, C
        for gap in gaps:
            visible = tracks.visible[ref + gap]
            if not visible.any():
                continue
            truth = torch.from_numpy(tracks.positions[ref + gap][visible])  # V, 2 (x, y)
            cells = best_matches(query[torch.from_numpy(visible).to(query.device)], keys.keys[ref + gap])  # V, 2
            matched = keys.grid_to_pixels(cells.cpu())
            nearest = keys.grid_to_pixels(nearest_cells(keys, truth))
            tally.count(gap, _distance(matched, truth), _distance(nearest, truth))
    return tally


def sample_keys(key_map: torch.Tensor, cells_yx: torch.Tensor) -> torch.Tensor:
    """Keys at continuous grid positions (bilinear, borders clamped).  key_map: C,h,w; cells_yx: N,2 -> N,C."""
    c, h, w = key_map.shape
    cells = cells_yx.to(key_map.device, torch.float32)
    grid = torch.stack([(cells[:, 1] + 0.5) / w * 2 - 1, (cells[:, 0] + 0.5) / h * 2 - 1], dim=-1)  # x, y in [-1, 1]
    sampled = F.grid_sample(key_map[None].float(), grid[None, None], mode="bilinear", padding_mode="border",
                            align_corners=False)  # 1, C, 1, N
    return sampled[0, :, 0].T


def best_matches(query: torch.Tensor, key_map: torch.Tensor) -> torch.Tensor:
    """The most similar cell (model's L2 similarity) for each query key.  query: N,C; key_map: C,h,w -> N,2 (row, col)."""
    c, h, w = key_map.shape
    m = key_map.reshape(c, h * w).float()
    logits = (2 * query.float() @ m - m.pow(2).sum(dim=0)[None]) / math.sqrt(c)  # N, hw (-||q||^2 is constant per row)
    flat = logits.argmax(dim=1)
    return torch.stack([flat // w, flat % w], dim=1)


def nearest_cells(keys: VideoKeys, points_xy: torch.Tensor) -> torch.Tensor:
    """The grid cell whose centre is nearest each point (clamped to the grid).  N,2 (x, y) -> N,2 (row, col)."""
    h, w = keys.grid_size
    cells = keys.pixels_to_grid(points_xy).round()
    return torch.stack([cells[:, 0].clamp(0, h - 1), cells[:, 1].clamp(0, w - 1)], dim=1)


def _distance(a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    return (a.double() - b.double()).norm(dim=1).numpy()


def correspondence_accuracy(
    model: object,
    videos: Iterable[EvalVideo],
    config: ProbeConfig = ProbeConfig(),
    device: torch.device | str | None = None,
) -> dict[str, float]:
    """corr_acc@r (mean over gaps), per gap, the grid ceiling and the point count over synthetic videos.

    `model`: an STCN, a `KeyEncoder` or a callable frames -> keys (stride 16). Videos without a
    synthetic motion are skipped; none at all is a DataError.
    """
    encoder = as_key_encoder(model, device)
    tally = CorrespondenceTally.empty(config)
    for number, video in enumerate(videos):
        if config.max_videos is not None and number >= config.max_videos:
            break
        motion = synthetic_motion(video)
        if motion is None:
            continue
        keys = encode_video(encoder, video.frames, config.max_short_side)
        tally.add(video_correspondence(keys, full_masks(video), motion, config, video.name))
    if tally.points == 0:
        raise DataError("point correspondence: no synthetic video with a visible tracked point "
                        "(only ingested synthetic datasets carry the motion)")
    return tally.metrics()
