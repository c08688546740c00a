"""Evaluate a model on whole videos: propagate, write DAVIS-layout predictions, score J&F, draw reports.

    run = evaluate_videos(model, davis_videos("DAVIS", ["bear"]), "runs/eval", InferenceConfig())
    run.jf_mean, run.fps, run.metrics(), run.report_paths

Output folder:
    predictions/<seq>/<frame>.png   indexed PNGs (DAVIS palette), every frame, committed per sequence
    scores.json                     the scorer's JSON (toolkit vocabulary) plus a "timing" section
    report/                         jf_per_sequence.png, <seq>_strip.png (worst frames), <seq>_overlay.gif
                                    (and <seq>_overlay.mp4 with mp4=True: real footage)
    ground_truth/, images/          copies the reports read, only for videos not already on disk
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sized
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from components.config.schema import InferenceConfig
from components.errors import DataError
from components.evaluation.predictions import SequenceFolder, propagate_to_folder, write_label_png
from components.evaluation.protocol import EvaluationResult, SequenceScore, count_objects, score_sequence
from components.evaluation.summary import result_dict
from components.evaluation.videos import EvalVideo
from components.inference import VideoPropagator, propagator_for
from components.storage import atomic_write_bytes


@dataclass(frozen=True)
class SequenceTiming:
    """Model time of one sequence (frame decoding and file writing excluded)."""

    name: str
    frame_count: int
    compute_seconds: float

    @property
    def fps(self) -> float:
        return self.frame_count / self.compute_seconds if self.compute_seconds > 0 else float("nan")


@dataclass(frozen=True)
class EvaluationRun:
    """Scores, timings and the files of one evaluation."""

    result: EvaluationResult
    timings: tuple[SequenceTiming, ...]
    out_dir: Path
    scores_path: Path
    report_paths: tuple[Path, ...]  # bar chart first, then per sequence strip and GIF; empty without reports

    @property
    def predictions_dir(self) -> Path:
        return self.out_dir / "predictions"

    @property
    def jf_mean(self) -> float:
        return self.result.global_metrics()["J&F-Mean"]

    @property
    def frame_count(self) -> int:
        return sum(t.frame_count for t in self.timings)

    @property
    def fps(self) -> float:
        """Frames per second over all sequences: all frames / all model time."""
        seconds = sum(t.compute_seconds for t in self.timings)
        return self.frame_count / seconds if seconds > 0 else float("nan")

    def sequence(self, name: str) -> SequenceScore:
        return next(s for s in self.result.sequences if s.name == name)

    def metrics(self) -> dict[str, float]:
        """Flat numbers for a tracker: the global J/F figures, fps and frame count."""
        return {**self.result.global_metrics(), "fps": self.fps, "frames": float(self.frame_count)}


def evaluate_videos(
    model: nn.Module,
    videos: Iterable[EvalVideo],
    out_dir: str | Path,
    inference_config: InferenceConfig = InferenceConfig(),
    device: torch.device | str | None = None,
    progress: bool = True,
    *,
    reports: bool = True,
    mp4: bool = False,
) -> EvaluationRun:
    """Propagate each video's given masks, write its predictions, score them against its ground truth.

    The DAVIS protocol applies: objects are those of the first ground-truth frame; the first and last
    annotated frames are not scored. An object given later (not in the first ground-truth frame) is
    propagated and written but not scored. A video with fewer than 3 annotated frames is an error.
    `mp4`: the reports add an MP4 of every sequence beside its GIF (for real footage).
    """
    out = Path(out_dir)
    (out / "predictions").mkdir(parents=True, exist_ok=True)
    propagator = propagator_for(model, inference_config, device)
    scores: list[SequenceScore] = []
    timings: list[SequenceTiming] = []
    on_disk: dict[str, tuple[Path, Path]] = {}  # name -> (ground-truth folder, image folder)
    total = len(videos) if isinstance(videos, Sized) else None
    for video in tqdm(videos, total=total, desc="evaluate", unit="seq", disable=not progress):
        if any(t.name == video.name for t in timings):
            raise DataError(f"two videos named {video.name!r}")
        check_scorable(video)
        score, timing = _evaluate_one(propagator, video, out, progress)
        scores.append(score)
        timings.append(timing)
        if reports:
            on_disk[video.name] = _report_inputs(video, out)
    if not scores:
        raise DataError("no videos to evaluate")
    result = EvaluationResult(sequences=tuple(scores))
    scores_path = _write_scores(result, timings, out / "scores.json")
    report_paths = _write_reports(result, out, on_disk, mp4) if reports else []
    return EvaluationRun(result, tuple(timings), out, scores_path, tuple(report_paths))


def check_scorable(video: EvalVideo) -> None:
    """A video can be scored: 3+ annotated frames of one size, objects in the first, a mask to start from."""
    indices = sorted(video.ground_truth)
    if len(indices) < 3:
        raise DataError(f"{video.name}: {len(indices)} annotated frames; scoring needs at least 3")
    first = video.ground_truth[indices[0]]
    if count_objects(first) == 0:
        raise DataError(f"{video.name}: the first ground-truth frame holds no object")
    for index in indices:
        height, width = video.ground_truth[index].shape[:2]
        if (height, width) != first.shape[:2]:
            raise DataError(f"{video.name}: ground truth of frame {video.frame_names[index]} is {width}x{height}, "
                            f"the first is {first.shape[1]}x{first.shape[0]}")
    if not video.annotations:
        raise DataError(f"{video.name}: no mask is given to start propagation")


def _evaluate_one(
    propagator: VideoPropagator, video: EvalVideo, out: Path, progress: bool
) -> tuple[SequenceScore, SequenceTiming]:
    indices = sorted(video.ground_truth)
    with SequenceFolder(out / "predictions" / video.name) as folder:
        run = propagate_to_folder(
            propagator, video.frames, video.frame_names, video.annotations, folder,
            keep=indices, progress=progress, desc=video.name,
        )
        gt = [video.ground_truth[i] for i in indices]
        scored = count_objects(gt[0])
        # ids beyond the first frame's objects are not scored; as background they change no object's J or F
        pred = [np.where(run.kept[i] > scored, 0, run.kept[i]) for i in indices]
        score = score_sequence(gt, pred, name=video.name, frame_names=[video.frame_names[i] for i in indices])
    return score, SequenceTiming(video.name, run.frame_count, run.compute_seconds)


def _report_inputs(video: EvalVideo, out: Path) -> tuple[Path, Path]:
    """Folders of ground-truth PNGs and frame JPEGs for the reports; written under `out` when absent."""
    gt_dir, image_dir = video.gt_dir, video.image_dir
    if gt_dir is None:
        gt_dir = out / "ground_truth" / video.name
        with SequenceFolder(gt_dir) as folder:
            for index, labels in video.ground_truth.items():
                write_label_png(folder / f"{video.frame_names[index]}.png", labels)
    if image_dir is None:
        from PIL import Image

        image_dir = out / "images" / video.name
        with SequenceFolder(image_dir) as folder:
            for index in video.ground_truth:  # reports only show annotated frames
                Image.fromarray(video.frames[index]).save(folder / f"{video.frame_names[index]}.jpg", quality=90)
    return gt_dir, image_dir


def _write_reports(result: EvaluationResult, out: Path, inputs: dict[str, tuple[Path, Path]], mp4: bool) -> list[Path]:
    from components.evaluation.reports import plot_jf_per_sequence, write_sequence_overlays

    report = out / "report"
    paths = [plot_jf_per_sequence(result, report / "jf_per_sequence.png")]
    for score in result.sequences:
        gt_dir, image_dir = inputs[score.name]
        paths += write_sequence_overlays(score, gt_dir, out / "predictions" / score.name, image_dir, report, mp4=mp4)
    return paths


def _write_scores(result: EvaluationResult, timings: list[SequenceTiming], path: Path) -> Path:
    frames = sum(t.frame_count for t in timings)
    seconds = sum(t.compute_seconds for t in timings)
    document: dict[str, Any] = result_dict(result)
    document["timing"] = {
        "frames": frames,
        "compute_seconds": seconds,
        "fps": frames / seconds if seconds > 0 else None,
        "sequences": {t.name: {"frames": t.frame_count, "compute_seconds": t.compute_seconds} for t in timings},
    }
    atomic_write_bytes(str(path), (json.dumps(document, indent=2, allow_nan=False) + "\n").encode())
    return path
