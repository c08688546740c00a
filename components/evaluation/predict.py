"""Segment a user's video: a folder of frames and the first masks in, DAVIS-layout PNGs (and a GIF + MP4) out.

Every input is checked before anything is written (frames readable and of one size, masks of that
size, at least one object); predictions go to a temporary folder that is renamed into place at the
end, so a failure leaves nothing behind. Optionally each frame's probabilities go to
<dir>/<frame stem>.npy (XMem's `--save_scores`): float16, 1 + objects channels at the frame's size,
background first, then the objects in ascending id; each file is written under a temporary name and
moved into place, and a failed run removes the files it wrote.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from components.config.schema import InferenceConfig
from components.errors import DataError
from components.evaluation.masks import check_mask_files, read_label_map
from components.evaluation.predictions import FrameCallback, SequenceFolder, propagate_to_folder
from components.evaluation.overlays import OverlayClip
from components.evaluation.videos import first_appearances, image_frames, image_size, list_image_files
from components.inference import propagator_for


@dataclass(frozen=True)
class PredictionRun:
    """Where the predictions went, and how fast the model ran (I/O excluded)."""

    sequence_dir: Path
    overlay_path: Path | None
    object_ids: tuple[int, ...]
    frame_count: int
    compute_seconds: float
    probabilities_dir: Path | None = None
    overlay_video: Path | None = None  # the MP4 beside the GIF

    @property
    def fps(self) -> float:
        return self.frame_count / self.compute_seconds if self.compute_seconds > 0 else float("nan")


def load_annotations(masks: Path, frame_paths: list[Path], size: tuple[int, int]) -> dict[int, np.ndarray]:
    """Masks given for the video, by frame index: one PNG (the first frame's), or a folder of PNGs
    matched to frames by file stem. Each object keeps only its first mask. `size` is (height, width).
    """
    masks = Path(masks)
    if masks.is_dir():
        files = sorted(p for p in masks.iterdir() if p.is_file() and p.suffix.lower() == ".png")
        if not files:
            raise DataError(f"no mask PNGs in {masks}")
        index = {p.stem: i for i, p in enumerate(frame_paths)}
        unmatched = [p for p in files if p.stem not in index]
        if unmatched:
            raise DataError(f"mask {unmatched[0]} matches no frame (frames are matched by name, e.g. "
                            f"{frame_paths[0].stem}.png for {frame_paths[0].name})")
        check_mask_files(files, frame_paths[0].parent.name, first_frame=frame_paths[0])
        given = {index[p.stem]: _read_mask(p, size) for p in files}
    elif masks.is_file():
        given = {0: _read_mask(masks, size)}
    else:
        raise DataError(f"mask path {masks} does not exist")
    given = first_appearances(given)
    if not given:
        raise DataError(f"no object in {masks}: every mask is background (0) or void (255)")
    return given


@dataclass(frozen=True)
class PredictionJob:
    """A checked request: frames of one size, the masks given per frame index, where results go."""

    frame_paths: tuple[Path, ...]
    annotations: dict[int, np.ndarray]
    sequence_dir: Path
    overlay_path: Path | None
    probabilities_dir: Path | None = None  # <dir>/<frame stem>.npy per frame, when asked for

    @property
    def overlay_video(self) -> Path | None:
        """The MP4 written beside the overlay GIF (<name>_overlay.mp4), when overlays are asked for."""
        return self.overlay_path.with_suffix(".mp4") if self.overlay_path is not None else None

    @property
    def object_ids(self) -> tuple[int, ...]:
        return tuple(sorted({int(v) for mask in self.annotations.values() for v in np.unique(mask) if v}))


def plan_prediction(
    frames_dir: str | Path,
    masks: str | Path,
    out_dir: str | Path,
    *,
    name: str | None = None,
    overlay_gif: bool = False,
    overwrite: bool = False,
    save_probabilities: str | Path | None = None,
) -> PredictionJob:
    """Check every input (cheap: frame headers and masks only) before any model is loaded.

    Results go to <out_dir>/<name>/ and <out_dir>/<name>_overlay.gif (+ .mp4); `name` defaults to the frames
    folder's name; probabilities to <save_probabilities>/<frame stem>.npy. An existing result is an
    error unless `overwrite`.
    """
    frames_dir, out_dir = Path(frames_dir), Path(out_dir)
    paths = list_image_files(frames_dir)
    if not paths:
        raise DataError(f"no frames (.jpg, .jpeg or .png) in {frames_dir}")
    annotations = load_annotations(Path(masks), paths, _common_size(paths))
    name = name or frames_dir.resolve().name
    final, gif = out_dir / name, out_dir / f"{name}_overlay.gif"
    if not overwrite and (final.exists() or (overlay_gif and (gif.exists() or gif.with_suffix(".mp4").exists()))):
        raise DataError(f"{final} already exists; pass --overwrite to replace it")
    probabilities = Path(save_probabilities) if save_probabilities is not None else None
    if probabilities is not None:
        if probabilities.exists() and not probabilities.is_dir():
            raise DataError(f"--save-probabilities {probabilities} is a file, not a folder")
        existing = next((probabilities / f"{p.stem}.npy" for p in paths if (probabilities / f"{p.stem}.npy").exists()),
                        None)
        if existing is not None and not overwrite:
            raise DataError(f"{existing} already exists; pass --overwrite to replace it")
    return PredictionJob(tuple(paths), annotations, final, gif if overlay_gif else None, probabilities)


def run_prediction(
    model: nn.Module,
    job: PredictionJob,
    config: InferenceConfig = InferenceConfig(),
    device: torch.device | str | None = None,
    progress: bool = True,
) -> PredictionRun:
    """Propagate, write every frame's PNG into a temporary folder, then move it (and the GIF) into place;
    probabilities, when the job asks for them, go file by file into their folder."""
    job.sequence_dir.parent.mkdir(parents=True, exist_ok=True)
    animation = None
    if job.overlay_path is not None:
        animation = OverlayClip(len(job.frame_paths), job.sequence_dir.parent)
    propagator = propagator_for(model, config, device, keep_probabilities=job.probabilities_dir is not None)
    writer = None
    if job.probabilities_dir is not None:
        writer = ProbabilityWriter(job.probabilities_dir, [p.stem for p in job.frame_paths], job.object_ids, propagator)
    callbacks = [c.add for c in (animation, writer) if c is not None]
    temporaries: tuple[Path, ...] = ()
    done = False
    try:
        with SequenceFolder(job.sequence_dir) as folder:
            run = propagate_to_folder(
                propagator, image_frames(job.frame_paths), [p.stem for p in job.frame_paths], job.annotations,
                folder, on_frame=_each(callbacks) if callbacks else None, progress=progress,
                desc=job.sequence_dir.name,
            )
            if animation is not None:
                temporaries = animation.save_temporary()
        for temporary, final in zip(temporaries, (job.overlay_path, job.overlay_video)):
            os.replace(temporary, final)
        done = True
    finally:
        for temporary in temporaries:
            temporary.unlink(missing_ok=True)  # only still there when something failed
        if animation is not None:
            animation.discard()
        if writer is not None and not done:
            writer.remove_written()
    return PredictionRun(job.sequence_dir, job.overlay_path, job.object_ids, run.frame_count, run.compute_seconds,
                         job.probabilities_dir, job.overlay_video)


def predict_folder(
    model: nn.Module,
    frames_dir: str | Path,
    masks: str | Path,
    out_dir: str | Path,
    config: InferenceConfig = InferenceConfig(),
    device: torch.device | str | None = None,
    *,
    name: str | None = None,
    overlay_gif: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    save_probabilities: str | Path | None = None,
) -> PredictionRun:
    """`plan_prediction` then `run_prediction`: <out_dir>/<name>/<frame>.png for every frame."""
    job = plan_prediction(frames_dir, masks, out_dir, name=name, overlay_gif=overlay_gif, overwrite=overwrite,
                          save_probabilities=save_probabilities)
    return run_prediction(model, job, config, device, progress)


def _each(callbacks: list[FrameCallback]) -> FrameCallback:
    """One frame callback that calls every one of `callbacks` in order."""
    def call(index: int, frame: np.ndarray, labels: np.ndarray) -> None:
        for callback in callbacks:
            callback(index, frame, labels)
    return call


def probability_channels(ids: tuple[int, ...], probs: np.ndarray, object_ids: tuple[int, ...]) -> np.ndarray:
    """probs 1+len(ids),H,W (background, then `ids` in join order) -> float16 1+len(object_ids),H,W:
    background, then `object_ids` (ascending); objects not joined yet are 0."""
    out = np.zeros((1 + len(object_ids), *probs.shape[1:]), dtype=np.float16)
    out[0] = probs[0]
    slot = {object_id: k for k, object_id in enumerate(object_ids)}
    for k, object_id in enumerate(ids):
        out[1 + slot[object_id]] = probs[1 + k]
    return out


class ProbabilityWriter:
    """Writes each frame's probabilities to <folder>/<frame stem>.npy (see `probability_channels`), atomically."""

    def __init__(self, folder: Path, stems: list[str], object_ids: tuple[int, ...], propagator) -> None:
        self.folder = Path(folder)
        self.stems = stems
        self.object_ids = tuple(sorted(object_ids))
        self.propagator = propagator  # a VideoPropagator with keep_probabilities
        self.written: list[Path] = []
        self.folder.mkdir(parents=True, exist_ok=True)

    def add(self, index: int, frame: np.ndarray, labels: np.ndarray) -> None:
        ids, probs = self.propagator.last_probabilities
        array = probability_channels(ids, probs, self.object_ids)
        final = self.folder / f"{self.stems[index]}.npy"
        handle, temporary = tempfile.mkstemp(prefix=f".{final.stem}.", suffix=".npy.tmp", dir=self.folder)
        try:
            with os.fdopen(handle, "wb") as stream:
                np.save(stream, array)
            os.chmod(temporary, 0o644)
            os.replace(temporary, final)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        self.written.append(final)

    def remove_written(self) -> None:
        """Undo a failed run: delete the files this writer moved into place."""
        for path in self.written:
            path.unlink(missing_ok=True)


def _common_size(paths: list[Path]) -> tuple[int, int]:
    """(height, width) shared by every frame, from the file headers; DataError naming the odd one out."""
    size = image_size(paths[0])
    for path in paths[1:]:
        other = image_size(path)
        if other != size:
            raise DataError(f"frame {path} is {other[1]}x{other[0]}, {paths[0].name} is {size[1]}x{size[0]}")
    return size


def _read_mask(path: Path, size: tuple[int, int]) -> np.ndarray:
    labels = read_label_map(path)
    if labels.shape != size:
        raise DataError(f"mask {path} is {labels.shape[1]}x{labels.shape[0]}, the frames are {size[1]}x{size[0]}")
    if labels.max(initial=0) > 255:
        raise DataError(f"mask {path}: object ids above 255 are not supported")
    return labels.astype(np.uint8, copy=False)
