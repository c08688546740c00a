"""The protocol on in-memory id maps: frames and objects scored, void modes, global pooling."""

from __future__ import annotations

import numpy as np
import pytest

from components.evaluation.protocol import EvaluationResult, score_frame, score_sequence
from tests.evaluation.masks_util import square

SHAPE = (20, 20)


def test_first_and_last_frames_are_not_scored() -> None:
    gt = [square(SHAPE, 5, 5, 5) for _ in range(5)]
    pred = [g.copy() for g in gt]
    pred[0] = np.full(SHAPE, 7, dtype=np.uint8)  # garbage, even an unknown id, is never looked at
    pred[4] = np.zeros(SHAPE, dtype=np.uint8)
    pred[2] = np.zeros(SHAPE, dtype=np.uint8)  # a miss in the middle counts
    score = score_sequence(gt, pred, name="seq")
    (obj,) = score.objects
    assert score.frames == ("00001", "00002", "00003")
    assert obj.j.tolist() == [1.0, 0.0, 1.0]
    assert obj.f.tolist() == [1.0, 0.0, 1.0]
    assert obj.j_stats.mean == pytest.approx(2 / 3)
    assert obj.j_stats.recall == pytest.approx(2 / 3)
    assert obj.j_stats.decay == pytest.approx(0.5 - 1.0)  # edges 0, 1, 1, 2, 2: bins [1, 0] and [1]


def test_decay_is_first_quarter_minus_last_quarter() -> None:
    frames = 11  # 9 evaluated: edges 0, 2, 4, 6, 8
    gt = [square(SHAPE, 5, 5, 5) for _ in range(frames)]
    pred = [g.copy() if t <= 5 else np.zeros(SHAPE, np.uint8) for t, g in enumerate(gt)]
    obj = score_sequence(gt, pred).objects[0]
    assert obj.j.tolist() == [1, 1, 1, 1, 1, 0, 0, 0, 0]
    assert obj.j_stats.decay == pytest.approx(1.0)  # bin [0:3] all 1, bin [6:9] all 0
    assert obj.f_stats.decay == pytest.approx(1.0)


def test_objects_are_counted_on_the_first_frame_and_missing_ones_score_empty() -> None:
    first = square(SHAPE, 2, 2, 4, value=1) | square(SHAPE, 10, 10, 4, value=2)
    later = first.copy()
    later[15:18, 0:3] = 3  # appears after frame 0: the toolkit does not score it
    gt = [first, later, later, later]
    pred = [first, square(SHAPE, 2, 2, 4), square(SHAPE, 2, 2, 4), first]  # object 2 lost mid-sequence
    score = score_sequence(gt, pred)
    assert [o.object_id for o in score.objects] == [1, 2]
    assert score.objects[0].j.tolist() == [1.0, 1.0]
    assert score.objects[1].j.tolist() == [0.0, 0.0]
    assert score.j_mean == pytest.approx(0.5)


def test_more_predicted_objects_than_ground_truth_is_an_error() -> None:
    gt = [square(SHAPE, 5, 5, 5)] * 3
    pred = [gt[0], square(SHAPE, 5, 5, 5, value=2), gt[0]]
    with pytest.raises(ValueError, match="more objects"):
        score_sequence(gt, pred, name="seq")


def test_short_or_empty_sequences_are_errors() -> None:
    with pytest.raises(ValueError, match="at least 3"):
        score_sequence([square(SHAPE, 5, 5, 5)] * 2, [square(SHAPE, 5, 5, 5)] * 2)
    with pytest.raises(ValueError, match="no object"):
        score_sequence([np.zeros(SHAPE, np.uint8)] * 3, [np.zeros(SHAPE, np.uint8)] * 3)
    with pytest.raises(ValueError, match="frames"):
        score_sequence([square(SHAPE, 5, 5, 5)] * 3, [square(SHAPE, 5, 5, 5)] * 4)


def test_void_is_background_by_default_and_ignored_on_request() -> None:
    gt = square(SHAPE, 5, 5, 4)  # 16 px
    gt[5:9, 9:13] = 255  # void band beside the object, wider than the 1 px tolerance
    pred = square(SHAPE, 5, 5, 4)
    pred[5:9, 9:13] = 1  # the prediction spills over the void band
    j_toolkit, f_toolkit = score_frame(gt, pred, 1)
    j_ignored, f_ignored = score_frame(gt, pred, 1, ignore_void=True)
    assert j_toolkit[0] == pytest.approx(16 / 32)
    assert j_ignored[0] == 1.0 and f_ignored[0] == 1.0
    assert f_toolkit[0] < 1.0


def test_void_pixels_in_first_frame_do_not_count_as_an_object() -> None:
    first = square(SHAPE, 5, 5, 4)
    first[0, :] = 255
    score = score_sequence([first] * 3, [square(SHAPE, 5, 5, 4)] * 3)
    assert len(score.objects) == 1 and score.objects[0].j.tolist() == [1.0]


def test_global_means_pool_objects_not_sequences() -> None:
    one = score_sequence([square(SHAPE, 2, 2, 4)] * 3, [square(SHAPE, 2, 2, 4)] * 3, name="one")
    three_gt = square(SHAPE, 0, 0, 3, 1) | square(SHAPE, 5, 5, 3, 2) | square(SHAPE, 10, 10, 3, 3)
    three = score_sequence([three_gt] * 3, [np.zeros(SHAPE, np.uint8)] * 3, name="three")
    result = EvaluationResult(sequences=(one, three))
    metrics = result.global_metrics()
    assert metrics["J-Mean"] == pytest.approx(0.25)  # (1 + 0 + 0 + 0) / 4, not (1 + 0) / 2
    assert metrics["F-Mean"] == pytest.approx(0.25)
    assert metrics["J&F-Mean"] == pytest.approx(0.25)
    assert metrics["J-Recall"] == pytest.approx(0.25)
    assert three.jf_mean == 0.0 and one.jf_mean == 1.0
