"""Random masks: J against a direct IoU, F against a slow, obviously correct boundary matcher."""

from __future__ import annotations

import math

import numpy as np
import pytest

from components.evaluation.metrics import boundary_f_measure, boundary_map, region_similarity


def random_mask(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """A few random rectangles and discs, some sprinkled noise; sometimes empty or full."""
    kind = rng.random()
    if kind < 0.05:
        return np.zeros(shape, dtype=bool)
    if kind < 0.08:
        return np.ones(shape, dtype=bool)
    ys, xs = np.mgrid[: shape[0], : shape[1]]
    mask = np.zeros(shape, dtype=bool)
    for _ in range(rng.integers(1, 4)):
        cy, cx = rng.integers(0, shape[0]), rng.integers(0, shape[1])
        if rng.random() < 0.5:
            mask |= (abs(ys - cy) <= rng.integers(1, 10)) & (abs(xs - cx) <= rng.integers(1, 10))
        else:
            mask |= (ys - cy) ** 2 + (xs - cx) ** 2 <= rng.integers(1, 80)
    mask ^= rng.random(shape) < 0.01
    return mask


def slow_boundary(mask: np.ndarray) -> np.ndarray:
    """Pixel by pixel: differs from the east, south or south-east pixel; borders by the toolkit's rule."""
    height, width = mask.shape
    out = np.zeros_like(mask)
    for y in range(height):
        for x in range(width):
            here = mask[y, x]
            if y < height - 1 and x < width - 1:
                out[y, x] = here != mask[y, x + 1] or here != mask[y + 1, x] or here != mask[y + 1, x + 1]
            elif y == height - 1 and x < width - 1:
                out[y, x] = here != mask[y, x + 1]
            elif x == width - 1 and y < height - 1:
                out[y, x] = here != mask[y + 1, x]
    return out


def slow_f(gt: np.ndarray, pred: np.ndarray, bound_th: float) -> float:
    """Boundary pixels matched when some boundary pixel of the other mask is within Euclidean radius r."""
    radius = math.ceil(bound_th * math.hypot(*gt.shape))
    gt_points = np.argwhere(slow_boundary(gt))
    pred_points = np.argwhere(slow_boundary(pred))
    if len(gt_points) == 0 and len(pred_points) == 0:
        return 1.0
    if len(gt_points) == 0 or len(pred_points) == 0:
        return 0.0
    squared = ((pred_points[:, None, :] - gt_points[None, :, :]) ** 2).sum(axis=2)
    close = squared <= radius * radius
    precision = close.any(axis=1).mean()
    recall = close.any(axis=0).mean()
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


@pytest.mark.parametrize("seed", range(4))
def test_j_is_plain_iou(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(25):
        shape = (int(rng.integers(5, 50)), int(rng.integers(5, 50)))
        gt, pred = random_mask(rng, shape), random_mask(rng, shape)
        void = rng.random(shape) < 0.1 if rng.random() < 0.5 else np.zeros(shape, dtype=bool)
        union = np.sum((gt | pred) & ~void)
        expected = 1.0 if union == 0 else np.sum(gt & pred & ~void) / union
        assert region_similarity(gt, pred, void) == pytest.approx(expected)


@pytest.mark.parametrize("bound_th", [0.008, 0.03, 0.1])
def test_f_agrees_with_slow_reference(bound_th: float) -> None:
    rng = np.random.default_rng(int(bound_th * 1000))
    for _ in range(20):
        shape = (int(rng.integers(4, 40)), int(rng.integers(4, 60)))
        gt = random_mask(rng, shape)
        shifted = np.roll(gt, tuple(rng.integers(-4, 5, 2)), axis=(0, 1))
        pred = shifted if rng.random() < 0.5 else random_mask(rng, shape)
        assert np.array_equal(boundary_map(gt), slow_boundary(gt))
        assert boundary_f_measure(gt, pred, bound_th=bound_th) == pytest.approx(slow_f(gt, pred, bound_th))
