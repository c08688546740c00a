"""The copy-first-mask floor: exactly 1 on a still video, and the J of the first mask against each frame otherwise."""

import numpy as np
import pytest

from components.evaluation.floor import copy_first_mask_floor, copy_first_mask_score
from components.evaluation.videos import EvalVideo


def _video(masks: list[np.ndarray], name: str = "v") -> EvalVideo:
    frames = [np.zeros((*masks[0].shape, 3), np.uint8) for _ in masks]
    return EvalVideo(name, tuple(f"{i:05d}" for i in range(len(masks))), frames, {0: masks[0]},
                     dict(enumerate(masks)))


def _box(x: int, object_id: int = 1, size: int = 8) -> np.ndarray:
    ids = np.zeros((32, 48), np.uint8)
    ids[8:8 + size, x:x + size] = object_id
    return ids


def test_a_still_object_scores_one():
    assert copy_first_mask_score(_video([_box(4)] * 5)).jf_mean == pytest.approx(1.0)


def test_a_moving_object_scores_the_overlap_of_the_first_mask():
    masks = [_box(4 + 2 * t) for t in range(5)]  # moves 2 px a frame: frames 1..3 are scored
    score = copy_first_mask_score(_video(masks))
    expected_j = np.mean([(8 - 2 * t) * 8 / ((8 + 2 * t) * 8) for t in (1, 2, 3)])  # IoU of two 8x8 boxes
    assert score.j_mean == pytest.approx(expected_j)
    assert score.jf_mean < 1.0


def test_void_and_later_objects_are_not_predicted():
    first = _box(4)
    first[0, 0] = 255  # void in the given mask
    first[20:24, 30:34] = 2  # an id the first ground-truth frame lacks cannot be scored
    gt = [_box(4)] * 4
    assert copy_first_mask_score(EvalVideo("v", tuple("abcd"), [np.zeros((32, 48, 3), np.uint8)] * 4, {0: first},
                                           dict(enumerate(gt)))).jf_mean == pytest.approx(1.0)


def test_the_floor_is_the_global_mean_over_videos():
    still, moving = _video([_box(4)] * 5, "still"), _video([_box(4 + 2 * t) for t in range(5)], "moving")
    result = copy_first_mask_floor([still, moving])
    jf = result.global_metrics()["J&F-Mean"]
    assert jf == pytest.approx((1.0 + copy_first_mask_score(moving).jf_mean) / 2)
