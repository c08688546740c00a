"""Upload archives for benchmarks without public ground truth: YouTube-VOS / MOSE valid, DAVIS test-dev.

    sub = write_submission(model, dataset_videos(uri), "runs/sub", benchmark_for("youtube-vos"))
    sub.archive, sub.sha256          # <out>/youtube-vos.zip, its SHA-256
    check_archive(sub.archive, sub.benchmark, sub.expected)   # what the tests and the stage run

What each server expects, as the official evaluation scripts pack it (docs/evaluation.md cites them):
- YouTube-VOS 2018/2019 valid: `Annotations/<video>/<frame>.png`, PNGs only for the frames meta.json
  lists (the union of the objects' `frames`, every 5th frame), or every frame from the first mask on
  for the "all frames" variant (XMem `eval.py` `--save_all`; `shutil.make_archive(..., 'Annotations')`).
- MOSE valid and DAVIS 2017 test-dev: `<video>/<frame>.png` at the top level, every frame (Cutie
  `results_utils.make_zip`: zipped from inside the Annotations folder; XMem packs test-dev likewise).
Every PNG is indexed, at the video's original size, with the palette of the video's first mask.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import time
import uuid
import zipfile
from collections.abc import Iterable, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn
from tqdm import tqdm

from components.config.schema import InferenceConfig
from components.data.palette import voc_palette
from components.errors import DataError
from components.evaluation.predictions import SequenceFolder
from components.evaluation.videos import EvalVideo
from components.inference import propagator_for
from components.storage import atomic_write_bytes

ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed entry times: the same predictions give the same archive bytes


@dataclass(frozen=True)
class Benchmark:
    """One server's upload layout: the folder before `<video>/` and which frames it wants."""

    name: str
    prefix: str  # "Annotations/" or "" (files at the top level)
    scored_frames_only: bool  # YouTube-VOS: only the frames meta.json lists; others: every frame


BENCHMARKS = {
    "youtube-vos": Benchmark("youtube-vos", "Annotations/", True),
    "mose": Benchmark("mose", "", False),
    "davis": Benchmark("davis-test-dev", "", False),
}


def benchmark_for(kind: str) -> Benchmark:
    """The upload layout of a dataset kind (davis means DAVIS 2017 test-dev)."""
    if kind not in BENCHMARKS:
        raise DataError(f"no benchmark archive for dataset kind {kind!r} (choose from {', '.join(BENCHMARKS)})")
    return BENCHMARKS[kind]


@dataclass(frozen=True)
class ExpectedVideo:
    """What the archive must hold for one video: which frames, their size, palette and possible ids."""

    name: str
    frames: tuple[str, ...]
    height: int
    width: int
    palette: tuple[int, ...]
    objects: tuple[int, ...]


@dataclass(frozen=True)
class Submission:
    """A packed archive, its digest and what it holds."""

    archive: Path
    sha256: str
    benchmark: Benchmark
    all_frames: bool
    expected: tuple[ExpectedVideo, ...]
    compute_seconds: float

    @property
    def files(self) -> int:
        return sum(len(v.frames) for v in self.expected)

    def summary(self) -> dict:
        """JSON-ready description (written beside the archive as <archive>.json)."""
        return {"benchmark": self.benchmark.name, "archive": self.archive.name, "sha256": self.sha256,
                "all_frames": self.all_frames, "videos": len(self.expected), "files": self.files,
                "frames": {v.name: list(v.frames) for v in self.expected}}


def frames_to_write(video: EvalVideo, benchmark: Benchmark, all_frames: bool = False) -> tuple[str, ...]:
    """The frame names the archive holds for `video`: the scored ones, or every frame from the first mask on."""
    if not video.annotations:
        raise DataError(f"{video.name}: no given mask to propagate")
    if benchmark.scored_frames_only and not all_frames:
        scored = video.extras.get("scored_frames")
        if not scored:
            raise DataError(f"{video.name}: no scored frames recorded; ingest the {benchmark.name} valid/test "
                            "layout with its meta.json, or set all_frames")
        return tuple(scored)
    return tuple(video.frame_names[min(video.annotations):])


def video_palette(video: EvalVideo) -> tuple[int, ...]:
    """The palette of the video's own masks (kept at ingest when not DAVIS's), else the DAVIS palette."""
    palette = video.extras.get("palette")
    return tuple(palette) if palette else voc_palette()


def write_submission(
    model: nn.Module,
    videos: Iterable[EvalVideo],
    out_dir: str | Path,
    benchmark: Benchmark,
    inference_config: InferenceConfig = InferenceConfig(),
    device: torch.device | str | None = None,
    *,
    all_frames: bool = False,
    progress: bool = True,
) -> Submission:
    """Propagate every video, write the PNGs the benchmark wants under <out>/masks, pack and check the zip."""
    out = Path(out_dir)
    masks = out / "masks"
    propagator = propagator_for(model, inference_config, device)
    expected: list[ExpectedVideo] = []
    seconds = 0.0
    for video in tqdm(videos, desc=f"predict {benchmark.name}", unit="video", disable=not progress):
        if any(v.name == video.name for v in expected):
            raise DataError(f"two videos named {video.name!r}")
        wanted = frames_to_write(video, benchmark, all_frames)
        missing = sorted(set(wanted) - set(video.frame_names))
        if missing:
            raise DataError(f"{video.name}: frame {missing[0]!r} to be written is not among the video's frames")
        palette = video_palette(video)
        folder = masks / benchmark.prefix / video.name
        folder.parent.mkdir(parents=True, exist_ok=True)
        size = None
        with SequenceFolder(folder) as partial, closing(propagator.iter_labels(video.frames, video.annotations)) as labels:
            wanted_set = set(wanted)
            for name in video.frame_names:
                start = time.perf_counter()
                label = next(labels)
                seconds += time.perf_counter() - start
                size = label.shape
                if name in wanted_set:
                    _write_png(partial / f"{name}.png", label, palette)
        objects = sorted({int(i) for m in video.annotations.values() for i in np.unique(m) if i not in (0, 255)})
        expected.append(ExpectedVideo(video.name, wanted, size[0], size[1], palette, tuple(objects)))
    if not expected:
        raise DataError("no videos to predict")
    archive = pack_archive(masks, out / f"{benchmark.name}.zip")
    check_archive(archive, benchmark, expected)
    submission = Submission(archive, file_sha256(archive), benchmark, all_frames, tuple(expected), seconds)
    atomic_write_bytes(str(out / f"{archive.name}.json"), json.dumps(submission.summary(), indent=1).encode())
    return submission


def _write_png(path: Path, labels: np.ndarray, palette: Sequence[int]) -> None:
    """An (H, W) id map as an indexed PNG with `palette`."""
    image = Image.fromarray(labels.astype(np.uint8, copy=False), mode="P")
    image.putpalette(list(palette))
    image.save(path, format="PNG")


def pack_archive(folder: Path, archive: Path) -> Path:
    """Zip every PNG under `folder` (paths relative to it, sorted, fixed times) into `archive`, atomically."""
    partial = archive.parent / f".{archive.name}.partial-{uuid.uuid4().hex[:8]}"
    try:
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for path in sorted(folder.rglob("*.png")):
                info = zipfile.ZipInfo(path.relative_to(folder).as_posix(), date_time=ZIP_DATE)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                zf.writestr(info, path.read_bytes())
        os.replace(partial, archive)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return archive


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_archive(archive: Path, benchmark: Benchmark, expected: Sequence[ExpectedVideo]) -> None:
    """Raise `DataError` naming the first entry that breaks the layout: a missing or extra file, a wrong
    size, mode or palette, or an id that is not one of the video's objects."""
    wanted = {f"{benchmark.prefix}{v.name}/{frame}.png": v for v in expected for frame in v.frames}
    with zipfile.ZipFile(archive) as zf:
        names = [i.filename for i in zf.infolist() if not i.is_dir()]
        extra = sorted(set(names) - set(wanted))
        if extra:
            raise DataError(f"{archive}: {extra[0]} is not part of the {benchmark.name} layout")
        missing = sorted(set(wanted) - set(names))
        if missing:
            raise DataError(f"{archive}: {missing[0]} is missing")
        for name in names:
            video = wanted[name]
            with Image.open(io.BytesIO(zf.read(name))) as image:
                if image.mode != "P" or image.size != (video.width, video.height):
                    raise DataError(f"{archive}: {name} is {image.mode} {image.size[0]}x{image.size[1]}, "
                                    f"expected P {video.width}x{video.height}")
                palette = tuple(image.getpalette("RGB") or ())
                if palette[: len(video.palette)] != video.palette[: len(palette)] or not palette:
                    raise DataError(f"{archive}: {name} does not carry the video's palette")
                stray = sorted(set(np.unique(np.asarray(image)).tolist()) - {0, *video.objects})
                if stray:
                    raise DataError(f"{archive}: {name} holds ids {stray} that are not objects of {video.name}")


__all__ = ["BENCHMARKS", "Benchmark", "ExpectedVideo", "Submission", "benchmark_for", "check_archive",
           "file_sha256", "frames_to_write", "pack_archive", "video_palette", "write_submission"]
