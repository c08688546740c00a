"""Static pseudo-videos (STCN, METHOD_REFERENCE.md §4.2): one image-mask pair becomes T frames.

Shared by all frames: a scale (0.8-1.5) about the centre and a horizontal flip, colour jitter and
random grayscale. Per frame: RandomAffine (±20°, scale 0.9-1.1, shear 10), resize of the shorter
side to the crop size, random crop, colour jitter, and with probability 0.33 a thin-plate-spline
warp (12 control points, displacement σ = 0.02 of the crop). Geometry is composed into one
source-coordinate map per frame, so every frame is resampled once.
"""

from __future__ import annotations

import cv2
import numpy as np

from components.data.augment import FILL_RGB, affine_about, apply_color, crop_resize_matrix, draw_color, flip_matrix
from components.data.config import StaticAugmentConfig


def augment_static(
    image: np.ndarray, mask: np.ndarray, num_frames: int, config: StaticAugmentConfig, rng: np.random.Generator,
    plain: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Frames (T, S, S, 3) uint8 and binary masks (T, S, S) uint8 made from one image and its mask.

    `plain` keeps only the resize and crop (a fallback when the augmentations lose the object).
    """
    height, width = image.shape[:2]
    size = config.crop_size
    centre = ((width - 1) / 2, (height - 1) / 2)
    shared = np.eye(3)
    if not plain:
        shared = affine_about(centre, 0.0, scale=float(rng.uniform(*config.scale)))
        if rng.random() < config.hflip_prob:
            shared = flip_matrix(width) @ shared
    shared_color = draw_color(rng, config.color, config.grayscale_prob)
    resize = size / min(height, width)
    frames, masks = [], []
    for _ in range(num_frames):
        per_frame = np.eye(3) if plain else affine_about(
            centre,
            float(rng.uniform(-config.frame_rotation, config.frame_rotation)),
            scale=float(rng.uniform(*config.frame_scale)),
            shear_x=float(rng.uniform(-config.frame_shear, config.frame_shear)),
        )
        out_w, out_h = max(size, round(width * resize)), max(size, round(height * resize))
        x0, y0 = int(rng.integers(0, out_w - size + 1)), int(rng.integers(0, out_h - size + 1))
        to_resized = crop_resize_matrix(0.0, 0.0, width, height, round(width * resize), round(height * resize))
        crop = np.array([[1.0, 0, -x0], [0, 1, -y0], [0, 0, 1]])
        matrix = crop @ to_resized @ per_frame @ shared
        tps = None if plain or rng.random() >= config.tps_prob else _tps_grid(rng, size, config.tps_points, config.tps_sigma)
        frame, frame_mask = _resample(image, mask, matrix, size, tps)
        frames.append(apply_color(frame, [draw_color(rng, config.frame_color), shared_color]))
        masks.append(frame_mask)
    return np.stack(frames), np.stack(masks)


def _resample(
    image: np.ndarray, mask: np.ndarray, matrix: np.ndarray, size: int, tps: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    if tps is None:
        frame = cv2.warpAffine(image, matrix[:2], (size, size), flags=cv2.INTER_CUBIC, borderValue=FILL_RGB)
        return frame, cv2.warpAffine(mask, matrix[:2], (size, size), flags=cv2.INTER_NEAREST, borderValue=0)
    inverse = np.linalg.inv(matrix)
    source = tps @ inverse[:2, :2].T + inverse[:2, 2]  # S, S, 2 source pixel of each output pixel
    map_x, map_y = source[..., 0].astype(np.float32), source[..., 1].astype(np.float32)
    frame = cv2.remap(image, map_x, map_y, interpolation=cv2.INTER_CUBIC, borderValue=FILL_RGB)
    return frame, cv2.remap(mask, map_x, map_y, interpolation=cv2.INTER_NEAREST, borderValue=0)


def _tps_grid(rng: np.random.Generator, size: int, points: int, sigma: float) -> np.ndarray:
    """(S, S, 2) pre-warp position of every output pixel under a random thin-plate spline.

    Control points move by Gaussian offsets; the spline maps each moved point back to where it
    came from, so content at a control point appears displaced by its offset in the output.
    """
    moved_from = rng.uniform(0, size - 1, size=(points, 2))
    moved_to = moved_from + rng.normal(0.0, sigma * size, size=(points, 2))
    weights, affine = _fit_tps(moved_to, moved_from)
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    grid = np.stack([xs, ys], axis=-1).reshape(-1, 2)
    mapped = _tps_kernel(grid, moved_to) @ weights + np.hstack([np.ones((len(grid), 1)), grid]) @ affine
    return mapped.reshape(size, size, 2)


def _fit_tps(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Thin-plate spline coefficients mapping `src` points exactly onto `dst` points."""
    n = len(src)
    system = np.zeros((n + 3, n + 3))
    system[:n, :n] = _tps_kernel(src, src)
    system[:n, n] = 1.0
    system[:n, n + 1 :] = src
    system[n, :n] = 1.0
    system[n + 1 :, :n] = src.T
    rhs = np.zeros((n + 3, 2))
    rhs[:n] = dst
    solution = np.linalg.lstsq(system, rhs, rcond=None)[0]
    return solution[:n], solution[n:]


def _tps_kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d2 = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
    return np.where(d2 > 0, d2 * np.log(np.maximum(d2, 1e-12)), 0.0)
