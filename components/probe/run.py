"""Probe a model on whole videos: key-only label propagation scored with the DAVIS J&F scorer, and point
correspondence where the videos are synthetic. One key-encoder pass per video serves both.

    run = probe_videos(model, dataset_videos("runs/data/synthetic"), "runs/probe", ProbeConfig())
    run.jf_mean, run.sequence_jf(), run.correspondence, run.metrics()

Output folder:
    predictions/<seq>/<frame>.png   indexed PNGs (DAVIS palette), every frame, committed per sequence
    scores.json                     the scorer's JSON (toolkit vocabulary) plus "probe" (settings) and
                                    "correspondence" (null without synthetic videos)
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sized
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from components.config import config_to_dict
from components.errors import DataError
from components.evaluation.evaluate import check_scorable
from components.evaluation.predictions import SequenceFolder, write_label_png
from components.evaluation.protocol import EvaluationResult, SequenceScore, count_objects, score_sequence
from components.evaluation.summary import result_dict
from components.evaluation.videos import EvalVideo
from components.probe.config import ProbeConfig
from components.probe.correspondence import CorrespondenceTally, full_masks, synthetic_motion, video_correspondence
from components.probe.keys import KeyEncoder, VideoKeys, as_key_encoder, encode_video
from components.probe.propagation import propagate_labels
from components.storage import atomic_write_bytes


@dataclass(frozen=True)
class ProbeRun:
    """Probe J&F (per sequence and global), point correspondence when measured, and the files."""

    result: EvaluationResult
    correspondence: dict[str, float] | None  # correspondence_accuracy's keys; None without synthetic videos
    out_dir: Path
    scores_path: Path
    seconds: float  # key encoding and propagation, I/O included

    @property
    def predictions_dir(self) -> Path:
        return self.out_dir / "predictions"

    @property
    def jf_mean(self) -> float:
        return self.result.global_metrics()["J&F-Mean"]

    def sequence_jf(self) -> dict[str, float]:
        return {s.name: s.jf_mean for s in self.result.sequences}

    def metrics(self) -> dict[str, float]:
        """Flat numbers under MLflow-safe names ('@' and '&' are refused there): probe_jf, probe_j, probe_f,
        corr_acc_at_8, corr_acc_at_8/gap4, corr_ceiling_at_8, corr_points."""
        g = self.result.global_metrics()
        out = {"probe_jf": g["J&F-Mean"], "probe_j": g["J-Mean"], "probe_f": g["F-Mean"]}
        for name, value in (self.correspondence or {}).items():
            out[name.replace("@", "_at_")] = value
        return out


def probe_videos(
    model: object,
    videos: Iterable[EvalVideo],
    out_dir: str | Path,
    config: ProbeConfig = ProbeConfig(),
    device: torch.device | str | None = None,
    progress: bool = True,
) -> ProbeRun:
    """Propagate each video's given masks with keys alone, write and score them; tally point correspondence
    on videos that carry a synthetic motion (all of them annotated on every frame).

    `model`: an STCN (its `encode_key(...).key`), a `KeyEncoder`, or a callable frames -> keys at stride 16.
    The DAVIS protocol applies as in `evaluate_videos`: objects of the first ground-truth frame are
    scored, the first and last annotated frames are not; fewer than 3 annotated frames is a DataError.
    """
    encoder: KeyEncoder = as_key_encoder(model, device)
    out = Path(out_dir)
    (out / "predictions").mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    scores: list[SequenceScore] = []
    tally = CorrespondenceTally.empty(config)
    measured = False
    total = len(videos) if isinstance(videos, Sized) else None
    if total is not None and config.max_videos is not None:
        total = min(total, config.max_videos)
    for number, video in enumerate(tqdm(videos, total=total, desc="probe", unit="seq", disable=not progress)):
        if config.max_videos is not None and number >= config.max_videos:
            break
        if any(s.name == video.name for s in scores):
            raise DataError(f"two videos named {video.name!r}")
        check_scorable(video)
        try:
            keys = encode_video(encoder, video.frames, config.max_short_side)
            scores.append(_probe_one(keys, video, out, config))
        except (ValueError, DataError) as exc:
            raise DataError(f"{video.name}: {exc}") from None
        motion = synthetic_motion(video)
        if motion is not None:
            tally.add(video_correspondence(keys, full_masks(video), motion, config, video.name))
            measured = True
    if not scores:
        raise DataError("no videos to probe")
    result = EvaluationResult(sequences=tuple(scores))
    correspondence = tally.metrics() if measured and tally.points else None
    scores_path = _write_scores(result, correspondence, config, out / "scores.json")
    return ProbeRun(result, correspondence, out, scores_path, time.perf_counter() - start)


def _probe_one(keys: VideoKeys, video: EvalVideo, out: Path, config: ProbeConfig) -> SequenceScore:
    indices = sorted(video.ground_truth)
    wanted, kept = set(indices), {}
    with SequenceFolder(out / "predictions" / video.name) as folder:
        for index, labels in enumerate(propagate_labels(keys, video.annotations, config)):
            write_label_png(folder / f"{video.frame_names[index]}.png", labels)
            if index in wanted:
                kept[index] = labels
        gt = [video.ground_truth[i] for i in indices]
        scored = count_objects(gt[0])
        # ids beyond the first frame's objects are not scored; as background they change no object's J or F
        pred = [np.where(kept[i] > scored, 0, kept[i]) for i in indices]
        return score_sequence(gt, pred, name=video.name, frame_names=[video.frame_names[i] for i in indices])


def _write_scores(
    result: EvaluationResult, correspondence: dict[str, float] | None, config: ProbeConfig, path: Path
) -> Path:
    document: dict[str, Any] = result_dict(result)
    document["probe"] = config_to_dict(config)
    document["correspondence"] = correspondence
    atomic_write_bytes(str(path), (json.dumps(document, indent=2, allow_nan=False) + "\n").encode())
    return path
