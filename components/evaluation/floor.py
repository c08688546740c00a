"""The copy-first-mask floor: J&F of a "model" that repeats the first given mask in every frame.

A trained model's J&F means little without it: on a video where objects barely move, copying the
first mask already scores high. Scored with the same protocol as the model (first and last annotated
frames excluded, only the first ground-truth frame's objects).
"""

from __future__ import annotations

from collections.abc import Iterable

from components.errors import DataError
from components.evaluation.protocol import EvaluationResult, SequenceScore, count_objects, score_sequence
from components.evaluation.videos import EvalVideo


def copy_first_mask_score(video: EvalVideo) -> SequenceScore:
    """The score of predicting the first given mask (objects beyond the scored ones as background)."""
    indices = sorted(video.ground_truth)
    gt = [video.ground_truth[i] for i in indices]
    first = video.annotations[min(video.annotations)].copy()
    first[first > count_objects(gt[0])] = 0  # void (255) and later objects are not predicted
    return score_sequence(gt, [first] * len(indices), name=video.name,
                          frame_names=[video.frame_names[i] for i in indices])


def copy_first_mask_floor(videos: Iterable[EvalVideo]) -> EvaluationResult:
    """The floor over `videos`, scored like `evaluate_videos` scores a model."""
    scores = tuple(copy_first_mask_score(v) for v in videos)
    if not scores:
        raise DataError("no videos to score the copy-first-mask floor on")
    return EvaluationResult(sequences=scores)
