"""The data-plane benchmark's data: a YouTube-VOS-like synthetic set written as files, and its Parquet ingest.

At YouTube-VOS scale (thousands of 720p videos) a training loader's decoded-frame cache holds a
sliver of the set, so a benchmark whose set fits in the cache measures the cache, not the loader.
`SyntheticSet` describes a few hundred 720p videos in YouTube-VOS's `train/` layout (JPEG frames
numbered every 5th, indexed PNG masks, meta.json); `prepared_set` writes and ingests it once into a
cache folder, so reruns with the same description reuse it.
"""

from __future__ import annotations

import io
import json
import multiprocessing
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from components.data.config import IngestConfig
from components.data.ingest import ingest
from components.data.records import object_ids_in
from components.data.synthetic import GENERATOR_VERSION, SyntheticSpec, generate_video

FRAME_STEP = 5  # YouTube-VOS `train` keeps every 5th frame of the source video, named by its source index
PALETTE = [0, 0, 0, 200, 0, 0, 0, 200, 0, 0, 0, 200, 200, 200, 0] + [255] * (3 * 251)
DONE = "set.json"  # written last: a folder without it is an unfinished set


@dataclass(frozen=True)
class SyntheticSet:
    """How many videos, of what size; each is drawn at 1/`render_scale` size and enlarged (drawing 720p is slow)."""

    videos: int = 300
    frames: int = 25
    width: int = 1280
    height: int = 720
    render_scale: int = 2
    quality: int = 90
    seed: int = 11

    @property
    def key(self) -> str:
        """The cache folder's name: a different description never reuses another's files."""
        return (f"ytvos-like-{self.videos}x{self.frames}-{self.width}x{self.height}-r{self.render_scale}"
                f"-q{self.quality}-s{self.seed}-{GENERATOR_VERSION}")

    @property
    def decoded_bytes(self) -> int:
        """What every frame and mask of the set takes decoded (RGB uint8 + id uint8), as a loader caches them."""
        return self.videos * self.frames * self.width * self.height * 4


@dataclass(frozen=True)
class PreparedSet:
    """The set on disk: the folder readers' split folder, the Parquet dataset, and what making them cost."""

    split_root: Path  # train/ with JPEGImages/, Annotations/, meta.json
    parquet: str
    write_seconds: float | None  # None: reused from the cache folder
    ingest_seconds: float | None
    jpeg_bytes: int


def prepared_set(spec: SyntheticSet, data_dir: Path, workers: int) -> PreparedSet:
    """`spec` written and ingested under `data_dir/<spec.key>`, or reused when a finished copy is there."""
    folder = data_dir / spec.key
    done = folder / DONE
    info = json.loads(done.read_text()) if done.is_file() else {}
    if info.get("spec") == asdict(spec):
        return PreparedSet(folder / "train", str(folder / "parquet"), None, None, info["jpeg_bytes"])
    shutil.rmtree(folder, ignore_errors=True)  # an unfinished set from an interrupted run
    started = time.perf_counter()
    jpeg_bytes = write_set(spec, folder, workers)
    written = time.perf_counter() - started
    started = time.perf_counter()
    ingest("youtube-vos", str(folder), str(folder / "parquet"), IngestConfig(engine="threads", workers=workers),
           split="train", progress=False)
    ingested = time.perf_counter() - started
    done.write_text(json.dumps({"spec": asdict(spec), "jpeg_bytes": jpeg_bytes}))
    return PreparedSet(folder / "train", str(folder / "parquet"), written, ingested, jpeg_bytes)


def write_set(spec: SyntheticSet, root: Path, workers: int) -> int:
    """Write `spec` as YouTube-VOS `root/train/` in `workers` processes; returns the JPEG bytes written."""
    split = root / "train"
    # forkserver, not fork: a child forked after OpenCV's thread pool has run hangs in its first OpenCV call
    with ProcessPoolExecutor(max_workers=max(1, workers), mp_context=multiprocessing.get_context("forkserver")) as pool:
        written = list(pool.map(_write_video, [spec] * spec.videos, [split] * spec.videos, range(spec.videos)))
    meta = {"videos": {name: {"objects": {str(i): {"category": "synthetic", "frames": frames} for i in ids}}
                       for name, ids, frames, _ in written}}
    (split / "meta.json").write_text(json.dumps(meta))
    return sum(size for *_, size in written)


def _write_video(spec: SyntheticSet, split: Path, index: int) -> tuple[str, list[int], list[str], int]:
    """Video `index`: JPEG frames written with OpenCV, indexed PNG masks; (name, object ids, frame stems, bytes)."""
    cv2.setNumThreads(1)  # one video per process: the processes are the parallelism
    small = SyntheticSpec(videos=spec.videos, frames=spec.frames, height=spec.height // spec.render_scale,
                          width=spec.width // spec.render_scale, seed=spec.seed)
    video = generate_video(small, index)
    name = f"synthetic-{index:04d}"
    (split / "JPEGImages" / name).mkdir(parents=True, exist_ok=True)
    (split / "Annotations" / name).mkdir(parents=True, exist_ok=True)
    size, ids, stems = (spec.width, spec.height), set(), []
    total = 0
    for t, (frame, mask) in enumerate(zip(video.frames, video.masks)):
        stem = f"{t * FRAME_STEP:05d}"
        bgr = cv2.resize(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), size, interpolation=cv2.INTER_LINEAR)
        ok, jpeg = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, spec.quality])
        if not ok:
            raise RuntimeError(f"{name} frame {t}: OpenCV could not encode a JPEG")
        (split / "JPEGImages" / name / f"{stem}.jpg").write_bytes(jpeg.tobytes())
        total += len(jpeg)
        ids_map = cv2.resize(mask, size, interpolation=cv2.INTER_NEAREST)
        ids.update(object_ids_in(ids_map))
        (split / "Annotations" / name / f"{stem}.png").write_bytes(_indexed_png(ids_map))
        stems.append(stem)
    return name, sorted(ids), stems, total


def _indexed_png(ids: np.ndarray) -> bytes:
    """An id mask as YouTube-VOS stores it: a palette PNG (fast compression: the masks are flat)."""
    image = Image.fromarray(ids, mode="P")
    image.putpalette(PALETTE)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()
