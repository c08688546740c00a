"""Scoring predictions stored in DAVIS layout (<sequence>/<frame>.png) against a ground-truth folder.

Frames are streamed one at a time, so a long sequence never sits in memory whole. Every problem
with the files (missing frame, size mismatch, more objects than the ground truth, ground truth that
mixes palette and grayscale masks or looks anti-aliased) is a DataError naming the file at fault.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path

import numpy as np
from tqdm import tqdm

from components.errors import DataError
from components.evaluation.masks import (
    check_mask_files,
    list_frames,
    list_sequences,
    read_label_map,
    resolve_annotation_root,
)
from components.evaluation.metrics import BOUNDARY_THRESHOLD
from components.evaluation.protocol import (
    EvaluationResult,
    SequenceScore,
    build_sequence_score,
    count_objects,
    max_object_id,
    score_frame,
)


def score_sequence_dir(
    gt_seq_dir: Path,
    pred_seq_dir: Path,
    *,
    ignore_void: bool = False,
    bound_th: float = BOUNDARY_THRESHOLD,
) -> SequenceScore:
    """Score one sequence folder of predictions against its ground-truth folder.

    The annotated frames are the ground truth's PNGs; predictions are needed for all of them but
    the first and last, which are not scored. Extra predicted frames are ignored.
    """
    gt_seq_dir, pred_seq_dir = Path(gt_seq_dir), Path(pred_seq_dir)
    name = gt_seq_dir.name
    frames = list_frames(gt_seq_dir)
    if len(frames) < 3:
        raise DataError(f"{gt_seq_dir}: {len(frames)} annotated frames; scoring needs at least 3")
    if not pred_seq_dir.is_dir():
        raise DataError(f"no predictions for sequence {name}: {pred_seq_dir} is not a folder")
    check_mask_files([gt_seq_dir / f"{frame}.png" for frame in frames], name)
    first_path = gt_seq_dir / f"{frames[0]}.png"
    num_objects = count_objects(read_label_map(first_path))
    if num_objects == 0:
        raise DataError(f"{first_path}: the first ground-truth frame holds no object")
    evaluated = frames[1:-1]
    j = np.empty((len(evaluated), num_objects))
    f = np.empty((len(evaluated), num_objects))
    for row, frame in enumerate(evaluated):
        gt_path, pred_path = gt_seq_dir / f"{frame}.png", pred_seq_dir / f"{frame}.png"
        if not pred_path.is_file():
            raise DataError(f"missing predicted frame {pred_path}")
        gt, pred = read_label_map(gt_path), read_label_map(pred_path)
        if gt.shape != pred.shape:
            raise DataError(
                f"{pred_path}: size {pred.shape[1]}x{pred.shape[0]} differs from the ground truth's "
                f"{gt.shape[1]}x{gt.shape[0]}"
            )
        top = max_object_id(pred)
        if top > num_objects:
            raise DataError(
                f"{pred_path}: object id {top} but the ground truth has {num_objects} object(s) "
                f"(ids 1..{num_objects}; 255 is void and never a valid prediction)"
            )
        j[row], f[row] = score_frame(gt, pred, num_objects, ignore_void=ignore_void, bound_th=bound_th)
    return build_sequence_score(name, evaluated, j, f)


def score_folders(
    gt_dir: Path,
    pred_dir: Path,
    *,
    sequences: Sequence[str] | None = None,
    ignore_void: bool = False,
    workers: int = 1,
    progress: bool = False,
    bound_th: float = BOUNDARY_THRESHOLD,
) -> EvaluationResult:
    """Score every ground-truth sequence (or the `sequences` named) against the predictions.

    `gt_dir` is a folder of sequence folders or a DAVIS root (Annotations/[480p/] inside).
    `workers` > 1 scores sequences in that many processes; `progress` shows a bar on stderr.
    """
    gt_root = resolve_annotation_root(Path(gt_dir))
    pred_root = Path(pred_dir)
    if not pred_root.is_dir():
        raise DataError(f"prediction folder {pred_root} does not exist")
    names = list(sequences) if sequences is not None else list_sequences(gt_root)
    if not names:
        raise DataError(f"no sequences (folders of PNG masks) in {gt_root}")
    for name in names:
        if not (gt_root / name).is_dir():
            raise DataError(f"sequence {name} is not in the ground truth {gt_root}")
        if not (pred_root / name).is_dir():
            raise DataError(f"no predictions for sequence {name}: {pred_root / name} is not a folder")
    score = partial(_score_named, gt_root, pred_root, ignore_void, bound_th)
    bar = partial(tqdm, total=len(names), desc="scoring", unit="seq", disable=not progress, leave=False)
    if workers <= 1 or len(names) == 1:
        results = [score(name) for name in bar(names)]
    else:
        with ProcessPoolExecutor(max_workers=min(workers, len(names))) as pool:
            results = list(bar(pool.map(score, names)))
    return EvaluationResult(sequences=tuple(results), ignore_void=ignore_void)


def _score_named(gt_root: Path, pred_root: Path, ignore_void: bool, bound_th: float, name: str) -> SequenceScore:
    return score_sequence_dir(gt_root / name, pred_root / name, ignore_void=ignore_void, bound_th=bound_th)
