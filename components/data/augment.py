"""Video clip augmentation (STCN, METHOD_REFERENCE.md §4.3), done as one warp and one colour matrix per frame.

Sequence level (shared by every frame): horizontal flip, RandomResizedCrop to `crop_size`, colour
jitter and random grayscale. Frame level (independent): RandomAffine (rotation, shear) about the
frame centre, applied before the shared crop as STCN does, and a small colour jitter. All geometric
steps of a frame are composed into one 2x3 matrix, so each frame is resampled once (bicubic for
images, nearest for masks); the colour steps are linear, so they compose into one 3x4 matrix
(clamping once at the end rather than after each step). View B and θ are not made here: the
model's training wrapper draws them on-device from the batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from components.data.config import VideoAugmentConfig

FILL_RGB = (124, 116, 104)  # ImageNet mean in 0-255: what STCN fills the affine's borders with
_LUMA = np.array([0.299, 0.587, 0.114])
_RGB_TO_YIQ = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])


@dataclass(frozen=True)
class ColorJitter:
    """Drawn factors of one colour jitter (1.0 = unchanged; hue in turns)."""

    brightness: float = 1.0
    contrast: float = 1.0
    saturation: float = 1.0
    hue: float = 0.0
    grayscale: bool = False


def draw_color(rng: np.random.Generator, strength: tuple[float, float, float, float], grayscale_prob: float = 0.0) -> ColorJitter:
    """Factors as torchvision's ColorJitter draws them: U[1-s, 1+s] for the first three, U[-h, h] for hue."""
    b, c, s, h = strength
    return ColorJitter(
        brightness=float(rng.uniform(max(0.0, 1 - b), 1 + b)),
        contrast=float(rng.uniform(max(0.0, 1 - c), 1 + c)),
        saturation=float(rng.uniform(max(0.0, 1 - s), 1 + s)),
        hue=float(rng.uniform(-h, h)),
        grayscale=bool(rng.random() < grayscale_prob),
    )


def color_matrix(jitters: list[ColorJitter], mean_rgb: np.ndarray) -> np.ndarray:
    """3x4 matrix applying `jitters` in order to an image whose mean colour is `mean_rgb` (0-255)."""
    linear, bias, mean = np.eye(3), np.zeros(3), np.asarray(mean_rgb, dtype=np.float64)[:3]
    for j in jitters:
        steps = [(j.brightness * np.eye(3), np.zeros(3))]
        steps.append((None, None))  # contrast: needs the mean grey at this point
        steps.append((j.saturation * np.eye(3) + (1 - j.saturation) * np.outer(np.ones(3), _LUMA), np.zeros(3)))
        if j.hue:
            steps.append((_hue_rotation(j.hue), np.zeros(3)))
        if j.grayscale:
            steps.append((np.outer(np.ones(3), _LUMA), np.zeros(3)))
        for step_linear, step_bias in steps:
            if step_linear is None:
                grey = float(_LUMA @ mean)
                step_linear, step_bias = j.contrast * np.eye(3), np.full(3, (1 - j.contrast) * grey)
            linear, bias = step_linear @ linear, step_linear @ bias + step_bias
            mean = step_linear @ mean + step_bias
    return np.concatenate([linear, bias[:, None]], axis=1)


def apply_color(image: np.ndarray, jitters: list[ColorJitter]) -> np.ndarray:
    """`image` (H, W, 3) uint8 with the jitters applied, saturated to [0, 255]."""
    matrix = color_matrix(jitters, np.asarray(cv2.mean(image)[:3]))
    return cv2.transform(image, matrix.astype(np.float32))


def random_resized_crop(
    rng: np.random.Generator, height: int, width: int, scale: tuple[float, float], ratio: tuple[float, float]
) -> tuple[float, float, float, float]:
    """(x0, y0, crop_w, crop_h) drawn as torchvision's RandomResizedCrop does (10 tries, then centre)."""
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(*log_ratio))
        w, h = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            return float(rng.integers(0, width - w + 1)), float(rng.integers(0, height - h + 1)), float(w), float(h)
    in_ratio = width / height
    if in_ratio < ratio[0]:
        w, h = width, round(width / ratio[0])
    elif in_ratio > ratio[1]:
        w, h = round(height * ratio[1]), height
    else:
        w, h = width, height
    return (width - w) / 2, (height - h) / 2, float(w), float(h)


def crop_resize_matrix(x0: float, y0: float, crop_w: float, crop_h: float, out_w: int, out_h: int) -> np.ndarray:
    """3x3 map from source pixels to output pixels of a crop resized to (out_w, out_h), pixel-centre aligned."""
    sx, sy = out_w / crop_w, out_h / crop_h
    return np.array([[sx, 0, (0.5 - x0) * sx - 0.5], [0, sy, (0.5 - y0) * sy - 0.5], [0, 0, 1.0]])


def flip_matrix(width: int) -> np.ndarray:
    return np.array([[-1.0, 0, width - 1], [0, 1, 0], [0, 0, 1]])


def affine_about(centre: tuple[float, float], degrees: float, scale: float = 1.0, shear_x: float = 0.0) -> np.ndarray:
    """3x3 rotation x scale x x-shear about `centre` (torchvision RandomAffine's parameters)."""
    a, s = math.radians(degrees), math.radians(shear_x)
    rotate = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    shear = np.array([[1.0, -math.tan(s)], [0.0, 1.0]])
    linear = scale * rotate @ shear
    c = np.asarray(centre)
    out = np.eye(3)
    out[:2, :2], out[:2, 2] = linear, c - linear @ c
    return out


def warp(image: np.ndarray, matrix: np.ndarray, size: int, is_mask: bool) -> np.ndarray:
    """Resample `image` through the 3x3 `matrix` (source -> output pixels) into a size x size output."""
    if is_mask:
        return cv2.warpAffine(image, matrix[:2], (size, size), flags=cv2.INTER_NEAREST, borderValue=0)
    return cv2.warpAffine(image, matrix[:2], (size, size), flags=cv2.INTER_CUBIC, borderValue=FILL_RGB)


def augment_video(
    frames: list[np.ndarray], masks: list[np.ndarray], config: VideoAugmentConfig, rng: np.random.Generator,
    plain: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Augmented frames (T, S, S, 3) uint8 and id masks (T, S, S) uint8; `plain` drops rotation and shear."""
    height, width = frames[0].shape[:2]
    size = config.crop_size
    shared = crop_resize_matrix(*random_resized_crop(rng, height, width, config.crop_scale, config.crop_ratio), size, size)
    if rng.random() < config.hflip_prob:
        shared = shared @ flip_matrix(width)
    shared_color = draw_color(rng, config.color, config.grayscale_prob)
    centre = ((width - 1) / 2, (height - 1) / 2)
    out_frames, out_masks = [], []
    for frame, mask in zip(frames, masks):
        degrees = 0.0 if plain else float(rng.uniform(-config.frame_rotation, config.frame_rotation))
        shear = 0.0 if plain else float(rng.uniform(-config.frame_shear, config.frame_shear))
        matrix = shared @ affine_about(centre, degrees, shear_x=shear)
        warped = warp(frame, matrix, size, is_mask=False)
        out_frames.append(apply_color(warped, [draw_color(rng, config.frame_color), shared_color]))
        out_masks.append(warp(mask, matrix, size, is_mask=True))
    return np.stack(out_frames), np.stack(out_masks)


def _hue_rotation(turns: float) -> np.ndarray:
    """Hue shift as a rotation of the chroma plane in YIQ space (a linear stand-in for HSV's hue)."""
    a = 2 * math.pi * turns
    rotate = np.array([[1, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]])
    return np.linalg.inv(_RGB_TO_YIQ) @ rotate @ _RGB_TO_YIQ
