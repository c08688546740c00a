"""Augmentations: composed matrices equal the step-by-step operations; shared vs per-frame; alignment."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np

from components.data.augment import (
    ColorJitter,
    augment_video,
    color_matrix,
    crop_resize_matrix,
    random_resized_crop,
)
from components.data.config import StaticAugmentConfig, VideoAugmentConfig
from components.data.static_clips import augment_static

NO_COLOR = (0.0, 0.0, 0.0, 0.0)
LUMA = np.array([0.299, 0.587, 0.114])


def _scene(seed: int = 0, size: tuple[int, int] = (90, 120)) -> tuple[np.ndarray, np.ndarray]:
    """A frame that *is* its mask: white where the object is, black elsewhere."""
    mask = np.zeros(size, np.uint8)
    cv2.circle(mask, (40 + seed, 45), 22, 1, -1)
    cv2.rectangle(mask, (75, 20), (110, 70), 2, -1)
    return np.repeat((mask > 0)[..., None] * 255, 3, axis=2).astype(np.uint8), mask


def test_color_matrix_matches_sequential_jitter() -> None:
    rng = np.random.default_rng(0)
    image = rng.uniform(60, 190, size=(20, 20, 3))
    jitters = [ColorJitter(1.07, 0.95, 1.04, 0.0), ColorJitter(0.93, 1.02, 0.97, 0.0, grayscale=True)]
    expected = image.copy()
    for j in jitters:
        expected = expected * j.brightness
        expected = j.contrast * expected + (1 - j.contrast) * (expected @ LUMA).mean()
        grey = (expected @ LUMA)[..., None]
        expected = j.saturation * expected + (1 - j.saturation) * grey
        if j.grayscale:
            expected = np.repeat((expected @ LUMA)[..., None], 3, axis=2)
    matrix = color_matrix(jitters, image.reshape(-1, 3).mean(0))
    got = image @ matrix[:, :3].T + matrix[:, 3]
    assert np.allclose(got, expected)
    assert np.allclose(color_matrix([ColorJitter()], np.array([1.0, 2.0, 3.0])), np.hstack([np.eye(3), np.zeros((3, 1))]))


def test_hue_rotation_keeps_grey_and_brightness() -> None:
    matrix = color_matrix([ColorJitter(hue=0.1)], np.array([100.0, 100.0, 100.0]))
    assert np.allclose(matrix[:, :3] @ np.array([80.0, 80.0, 80.0]), 80.0)
    colour = np.array([200.0, 50.0, 30.0])
    assert np.isclose(LUMA @ (matrix[:, :3] @ colour), LUMA @ colour)
    assert not np.allclose(matrix[:, :3] @ colour, colour)


def test_crop_resize_matrix_equals_cropping_then_resizing() -> None:
    image = np.random.default_rng(1).integers(0, 256, size=(60, 80, 3), dtype=np.uint8)
    x0, y0, w, h = 10, 6, 40, 30
    matrix = crop_resize_matrix(x0, y0, w, h, 20, 15)
    warped = cv2.warpAffine(image, matrix[:2], (20, 15), flags=cv2.INTER_LINEAR)
    direct = cv2.resize(image[y0 : y0 + h, x0 : x0 + w], (20, 15), interpolation=cv2.INTER_LINEAR)
    assert np.abs(warped.astype(int) - direct.astype(int)).max() <= 1


def test_random_resized_crop_respects_scale_and_bounds() -> None:
    rng = np.random.default_rng(2)
    for _ in range(200):
        x0, y0, w, h = random_resized_crop(rng, 90, 160, (0.36, 1.0), (3 / 4, 4 / 3))
        assert 0 <= x0 and 0 <= y0 and x0 + w <= 160 and y0 + h <= 90
        assert 0.3 <= w * h / (90 * 160) <= 1.0


def test_shared_transform_is_shared_and_frame_affine_is_not() -> None:
    frame, mask = _scene()
    config = VideoAugmentConfig(crop_size=64, frame_color=NO_COLOR)
    frames, masks = augment_video([frame] * 3, [mask] * 3, config, np.random.default_rng(3), plain=True)
    assert all(np.array_equal(frames[0], f) for f in frames) and all(np.array_equal(masks[0], m) for m in masks)
    frames, masks = augment_video([frame] * 3, [mask] * 3, config, np.random.default_rng(3))
    assert not np.array_equal(masks[0], masks[1]) and not np.array_equal(masks[1], masks[2])


def test_frames_and_masks_stay_aligned_through_video_augmentation() -> None:
    config = VideoAugmentConfig(crop_size=96, color=NO_COLOR, frame_color=NO_COLOR, grayscale_prob=0.0)
    rng = np.random.default_rng(4)
    for trial in range(10):
        frame, mask = _scene(trial)
        frames, masks = augment_video([frame] * 3, [mask] * 3, config, rng)
        for f, m in zip(frames, masks):
            bright, inside = f[..., 0] > 127, m > 0
            assert (bright == inside).mean() > 0.97  # disagreement only along resampled edges
            assert set(np.unique(m)) <= {0, 1, 2}


def test_static_pseudo_video_frames_differ_and_stay_aligned_with_tps() -> None:
    frame, mask = _scene()
    mask = (mask > 0).astype(np.uint8)
    config = StaticAugmentConfig(crop_size=64, color=NO_COLOR, frame_color=NO_COLOR, grayscale_prob=0.0, tps_prob=1.0)
    frames, masks = augment_static(frame, mask, 3, config, np.random.default_rng(5))
    assert frames.shape == (3, 64, 64, 3) and masks.shape == (3, 64, 64)
    assert not np.array_equal(masks[0], masks[1])
    for f, m in zip(frames, masks):
        assert ((f[..., 0] > 127) == (m > 0)).mean() > 0.97
    no_tps = replace(config, tps_prob=0.0)
    plain, _ = augment_static(frame, mask, 3, no_tps, np.random.default_rng(5))
    assert not np.array_equal(plain, frames)  # the thin-plate warp changed the geometry


def test_static_plain_fallback_is_resize_and_crop_only() -> None:
    frame, mask = _scene()
    config = StaticAugmentConfig(crop_size=90, color=NO_COLOR, frame_color=NO_COLOR, grayscale_prob=0.0)
    frames, masks = augment_static(frame, (mask > 0).astype(np.uint8), 2, config, np.random.default_rng(6), plain=True)
    # shorter side 90 -> unchanged scale; a 90x90 window of the 90x120 frame
    offsets = [x for x in range(31) if np.array_equal(masks[0], (mask[:, x : x + 90] > 0).astype(np.uint8))]
    assert offsets
