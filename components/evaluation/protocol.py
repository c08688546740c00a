"""The DAVIS semi-supervised protocol on in-memory masks: which frames and objects are scored, and how.

Per object and frame J and F are measured; the first and last annotated frames are left out
(the first is given to the method, the last is excluded by the toolkit); each object gets Mean,
Recall and Decay; the global J&F is the mean of J-Mean and F-Mean over all objects of all
sequences, so a sequence with three objects weighs three times one with one.

Void pixels (id 255 in the ground truth): the official toolkit turns them into background
before scoring, so a prediction covering them is penalised. That is the default here, which
keeps numbers comparable with published ones; `ignore_void=True` leaves them out instead.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from components.evaluation.masks import VOID_ID
from components.evaluation.metrics import (
    BOUNDARY_THRESHOLD,
    Statistics,
    boundary_f_measure,
    region_similarity,
    statistics,
)


@dataclass(frozen=True, eq=False)  # eq would compare numpy arrays element-wise
class ObjectScore:
    """Scores of one object over the evaluated frames of a sequence."""

    object_id: int
    j: np.ndarray  # N  region similarity per evaluated frame
    f: np.ndarray  # N  boundary F-measure per evaluated frame
    j_stats: Statistics = field(init=False)
    f_stats: Statistics = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "j_stats", statistics(self.j))
        object.__setattr__(self, "f_stats", statistics(self.f))

    @property
    def jf_mean(self) -> float:
        return (self.j_stats.mean + self.f_stats.mean) / 2


@dataclass(frozen=True)
class SequenceScore:
    """Scores of every object of one sequence; `frames` names the evaluated frames."""

    name: str
    frames: tuple[str, ...]
    objects: tuple[ObjectScore, ...]

    @property
    def j_mean(self) -> float:
        return _mean([o.j_stats.mean for o in self.objects])

    @property
    def f_mean(self) -> float:
        return _mean([o.f_stats.mean for o in self.objects])

    @property
    def jf_mean(self) -> float:
        return (self.j_mean + self.f_mean) / 2


@dataclass(frozen=True)
class EvaluationResult:
    """Scores of a whole evaluation, sequences in the order they were scored."""

    sequences: tuple[SequenceScore, ...]
    ignore_void: bool = False

    @property
    def objects(self) -> list[ObjectScore]:
        return [o for s in self.sequences for o in s.objects]

    def global_metrics(self) -> dict[str, float]:
        """The toolkit's global line: means over all objects of all sequences."""
        objects = self.objects
        j_mean = _mean([o.j_stats.mean for o in objects])
        f_mean = _mean([o.f_stats.mean for o in objects])
        return {
            "J&F-Mean": (j_mean + f_mean) / 2,
            "J-Mean": j_mean,
            "J-Recall": _mean([o.j_stats.recall for o in objects]),
            "J-Decay": _mean([o.j_stats.decay for o in objects]),
            "F-Mean": f_mean,
            "F-Recall": _mean([o.f_stats.recall for o in objects]),
            "F-Decay": _mean([o.f_stats.decay for o in objects]),
        }


def score_frame(
    gt_labels: np.ndarray,
    pred_labels: np.ndarray,
    num_objects: int,
    *,
    ignore_void: bool = False,
    bound_th: float = BOUNDARY_THRESHOLD,
) -> tuple[np.ndarray, np.ndarray]:
    """J and F of objects 1..num_objects on one frame of id maps (H, W): two arrays of num_objects.

    An object absent from the prediction scores as an empty mask.
    """
    if gt_labels.shape != pred_labels.shape:
        raise ValueError(f"ground truth {gt_labels.shape} and prediction {pred_labels.shape} differ in size")
    void = (gt_labels == VOID_ID) if ignore_void else None
    j = np.empty(num_objects)
    f = np.empty(num_objects)
    for index in range(num_objects):
        gt = gt_labels == index + 1
        pred = pred_labels == index + 1
        j[index] = region_similarity(gt, pred, void)
        f[index] = boundary_f_measure(gt, pred, void, bound_th)
    return j, f


def count_objects(first_gt_labels: np.ndarray) -> int:
    """Objects of a sequence as the toolkit counts them: the largest non-void id in the first frame."""
    ids = first_gt_labels[first_gt_labels != VOID_ID]
    return int(ids.max()) if ids.size else 0


def max_object_id(pred_labels: np.ndarray) -> int:
    """Largest object id in a predicted frame (255 included: a prediction has no void)."""
    return int(pred_labels.max()) if pred_labels.size else 0


def build_sequence_score(name: str, frames: Sequence[str], j: np.ndarray, f: np.ndarray) -> SequenceScore:
    """Wrap per-frame J and F arrays (N frames, K objects) into a SequenceScore."""
    objects = tuple(ObjectScore(object_id=k + 1, j=j[:, k].copy(), f=f[:, k].copy()) for k in range(j.shape[1]))
    return SequenceScore(name=name, frames=tuple(frames), objects=objects)


def score_sequence(
    gt_labels: Sequence[np.ndarray],
    pred_labels: Sequence[np.ndarray],
    *,
    name: str = "sequence",
    frame_names: Sequence[str] | None = None,
    ignore_void: bool = False,
    bound_th: float = BOUNDARY_THRESHOLD,
) -> SequenceScore:
    """Score one sequence given id maps of all its annotated frames, ground truth and prediction.

    Both sequences are T frames long; frames 0 and T-1 are not scored (their predictions are
    never looked at). Objects are counted on the first ground-truth frame.
    """
    if len(gt_labels) != len(pred_labels):
        raise ValueError(f"{name}: {len(gt_labels)} ground-truth frames but {len(pred_labels)} predicted")
    if len(gt_labels) < 3:
        raise ValueError(f"{name}: needs at least 3 annotated frames (first and last are not scored)")
    names = list(frame_names) if frame_names is not None else [f"{t:05d}" for t in range(len(gt_labels))]
    num_objects = count_objects(gt_labels[0])
    if num_objects == 0:
        raise ValueError(f"{name}: the first ground-truth frame holds no object")
    evaluated = range(1, len(gt_labels) - 1)
    j = np.empty((len(evaluated), num_objects))
    f = np.empty((len(evaluated), num_objects))
    for row, t in enumerate(evaluated):
        if max_object_id(pred_labels[t]) > num_objects:
            raise ValueError(f"{name}: frame {names[t]} predicts more objects than the ground truth's {num_objects}")
        j[row], f[row] = score_frame(
            gt_labels[t], pred_labels[t], num_objects, ignore_void=ignore_void, bound_th=bound_th
        )
    return build_sequence_score(name, names[1:-1], j, f)


def _mean(values: Sequence[float]) -> float:
    return float(np.mean(values)) if len(values) else math.nan
