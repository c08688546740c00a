"""Per-frame DAVIS measures (region similarity J, boundary F) and per-object statistics.

Definitions follow the DAVIS 2017 evaluation toolkit (davisvideochallenge/davis2017-evaluation)
so that numbers agree with published results; each quirk is stated where it is implemented.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import cv2
import numpy as np

BOUNDARY_THRESHOLD = 0.008  # boundary tolerance as a fraction of the image diagonal
DECAY_BINS = 4


def region_similarity(gt: np.ndarray, pred: np.ndarray, void: np.ndarray | None = None) -> float:
    """J: intersection over union of two binary masks, pixels marked `void` left out.

    Both masks empty (a union of zero pixels) counts as a perfect 1.0, as in the toolkit.
    """
    _check_same_shape(gt, pred, void)
    gt = gt.astype(bool)
    pred = pred.astype(bool)
    keep = np.ones_like(gt) if void is None else ~void.astype(bool)
    intersection = np.count_nonzero(gt & pred & keep)
    union = np.count_nonzero((gt | pred) & keep)
    return 1.0 if union == 0 else intersection / union


def disk(radius: int) -> np.ndarray:
    """Flat disk footprint, (2r+1) x (2r+1) uint8: 1 where dx^2 + dy^2 <= r^2 (skimage's `disk`)."""
    offsets = np.arange(-radius, radius + 1)
    dy, dx = np.meshgrid(offsets, offsets, indexing="ij")
    return (dx * dx + dy * dy <= radius * radius).astype(np.uint8)


def boundary_map(mask: np.ndarray) -> np.ndarray:
    """One-pixel-wide boundary of a binary mask (Martin's seg2bmap, without rescaling).

    A pixel is boundary when it differs from its east, south or south-east neighbour, so the
    boundary sits half a pixel towards the origin and both sides of an edge can be marked.
    Last row: compared with its east neighbour only; last column: with its south neighbour
    only; the bottom-right pixel is never boundary. The image border itself is no boundary.
    """
    seg = mask.astype(bool)
    east = np.zeros_like(seg)
    south = np.zeros_like(seg)
    south_east = np.zeros_like(seg)
    east[:, :-1] = seg[:, 1:]
    south[:-1, :] = seg[1:, :]
    south_east[:-1, :-1] = seg[1:, 1:]
    bmap = (seg ^ east) | (seg ^ south) | (seg ^ south_east)
    bmap[-1, :] = seg[-1, :] ^ east[-1, :]
    bmap[:, -1] = seg[:, -1] ^ south[:, -1]
    bmap[-1, -1] = False
    return bmap


def boundary_tolerance(shape: tuple[int, ...], bound_th: float = BOUNDARY_THRESHOLD) -> int:
    """Matching radius in pixels: ceil(bound_th * diagonal), or bound_th itself when it is >= 1."""
    if bound_th >= 1:
        return int(bound_th)
    height, width = shape[:2]
    # sqrt of the exact integer sum: the same float as np.linalg.norm(shape) in the toolkit
    return int(math.ceil(bound_th * math.sqrt(height * height + width * width)))


def boundary_f_measure(
    gt: np.ndarray,
    pred: np.ndarray,
    void: np.ndarray | None = None,
    bound_th: float = BOUNDARY_THRESHOLD,
) -> float:
    """F: harmonic mean of boundary precision and recall, matched within `boundary_tolerance`.

    Void pixels are cleared from both masks before boundaries are taken. A boundary pixel
    matches when the other boundary, dilated by a disk of the tolerance radius, covers it.
    No boundary at all in both masks scores 1.0; in only one of them, 0.0.
    """
    _check_same_shape(gt, pred, void)
    gt = gt.astype(bool)
    pred = pred.astype(bool)
    if void is not None:
        keep = ~void.astype(bool)
        gt = gt & keep
        pred = pred & keep
    gt_boundary = boundary_map(gt)
    pred_boundary = boundary_map(pred)
    n_gt = int(np.count_nonzero(gt_boundary))
    n_pred = int(np.count_nonzero(pred_boundary))
    if n_gt == 0 and n_pred == 0:
        return 1.0
    if n_gt == 0 or n_pred == 0:
        return 0.0  # precision 1 / recall 0, or the reverse: F = 0 either way
    kernel = disk(boundary_tolerance(gt.shape, bound_th))
    gt_reach = cv2.dilate(gt_boundary.astype(np.uint8), kernel).astype(bool)
    pred_reach = cv2.dilate(pred_boundary.astype(np.uint8), kernel).astype(bool)
    precision = np.count_nonzero(pred_boundary & gt_reach) / n_pred
    recall = np.count_nonzero(gt_boundary & pred_reach) / n_gt
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def decay_bin_edges(num_frames: int, bins: int = DECAY_BINS) -> list[int]:
    """Bin edges e_0..e_bins over `num_frames` values; bin k is values[e_k : e_{k+1} + 1].

    The toolkit takes round(linspace(1, n, bins + 1) + 1e-10) - 1, i.e. k * (n - 1) / bins
    rounded half up; neighbouring bins share their edge frame. The toolkit keeps the edges in
    uint8, which overflows from n = 256 evaluated frames on (its last bin comes out empty and
    the decay NaN); here the edges are exact, so results are identical for n <= 255.
    """
    return [(2 * k * (num_frames - 1) + bins) // (2 * bins) for k in range(bins + 1)]


@dataclass(frozen=True)
class Statistics:
    """Mean, recall (fraction of frames above 0.5) and decay of one measure for one object."""

    mean: float
    recall: float
    decay: float


def statistics(per_frame: np.ndarray, bins: int = DECAY_BINS) -> Statistics:
    """Toolkit's db_statistics: NaN-ignoring mean, recall over all frames, decay first bin - last bin.

    A NaN frame counts as a failure in recall; an empty input gives NaN everywhere.
    """
    values = np.asarray(per_frame, dtype=np.float64)
    if values.size == 0:
        return Statistics(math.nan, math.nan, math.nan)
    edges = decay_bin_edges(values.size, bins)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)  # all-NaN bin -> NaN
        mean = float(np.nanmean(values))
        first = float(np.nanmean(values[edges[0] : edges[1] + 1]))
        last = float(np.nanmean(values[edges[bins - 1] : edges[bins] + 1]))
    recall = float(np.mean(values > 0.5))
    return Statistics(mean=mean, recall=recall, decay=first - last)


def _check_same_shape(gt: np.ndarray, pred: np.ndarray, void: np.ndarray | None) -> None:
    if gt.ndim != 2 or gt.shape != pred.shape or (void is not None and void.shape != gt.shape):
        shapes = [gt.shape, pred.shape] + ([] if void is None else [void.shape])
        raise ValueError(f"expected 2-D masks of one shape, got {shapes}")
