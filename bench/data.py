"""Data-plane benchmark: ingestion speed, and training samples/s from Parquet vs from JPEG folders.

    python -m bench.data [--source DAVIS_DIR] [--batch 8] [--crop 384] [--workers 2] [--rounds 3]

Without --source it writes synthetic videos at DAVIS size (854x480) as a DAVIS folder in a
temporary directory, then ingests it (timed: ingestion frames/s). Every reader is the same
`ClipLoader` pipeline (videos, seeds, sampler, augmentation, threads, prefetch, batching); they
differ only in where a sampled frame comes from:
- parquet loader: the row group read once, the frame decoded from memory with OpenCV and kept in
  the decoded cache (the loader's defaults);
- parquet loader, no decoded cache: the same, decoding every sampled frame afresh;
- jpeg folders, PIL: each sampled JPEG and PNG opened from its file with PIL, as STCN and XMem do;
- jpeg folders, OpenCV: the same with cv2.imread for the frames.
Rounds are interleaved and the median is kept, since other load on the machine hits all alike.
The last line is the ratio of the parquet loader to the PIL folder reader.
"""

from __future__ import annotations

import argparse
import io
import itertools
import posixpath
import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
from PIL import Image

from components.config import config_from_dict
from components.data.clips import decode_frame
from components.data.codec import encode_jpeg
from components.data.config import DataConfig, IngestConfig
from components.data.ingest import ingest
from components.data.loader import ClipLoader
from components.data.records import object_ids_in
from components.data.sources.base import Folder, frame_files, mask_files
from components.data.synthetic import SyntheticSpec, generate_video


class FolderVideo:
    """A DAVIS-layout video read file by file, the way folder-based VOS loaders do it."""

    def __init__(self, root: Path, name: str, decoder: str) -> None:
        folder = Folder(str(root))
        self.name, self.decoder = name, decoder
        images, masks = folder.join("JPEGImages", name), folder.join("Annotations", name)
        frames, annotations = frame_files(folder, images), mask_files(folder, masks)
        stems = sorted(frames)
        self.frame_paths = [posixpath.join(images, frames[s]) for s in stems]
        self.annotated = [i for i, s in enumerate(stems) if s in annotations]
        self.mask_paths = {i: posixpath.join(masks, annotations[stems[i]]) for i in self.annotated}
        self.frame_objects = [object_ids_in(self.mask(i)) for i in self.annotated]  # listing cost, not timed
        self.annotation_interval = 1

    def frame(self, index: int) -> np.ndarray:
        if self.decoder == "pil":
            return np.asarray(Image.open(self.frame_paths[index]).convert("RGB"))
        return cv2.cvtColor(cv2.imread(self.frame_paths[index], cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)

    def mask(self, index: int) -> np.ndarray:
        """Ids as a folder loader reads them: palette indices, or 255 -> 1 for grayscale (no checks)."""
        image = Image.open(self.mask_paths[index])
        if image.mode == "P":
            return np.asarray(image)
        return (np.asarray(image.convert("L")) == 255).astype(np.uint8)


def write_synthetic_davis(root: Path, videos: int, frames: int, height: int, width: int) -> None:
    """Synthetic videos saved as DAVIS 2017 files: JPEG frames, indexed PNG masks."""
    spec = SyntheticSpec(videos=videos, frames=frames, height=height, width=width, seed=11)
    for index in range(videos):
        video = generate_video(spec, index)
        name = f"synthetic-{index:03d}"
        (root / "JPEGImages" / name).mkdir(parents=True)
        (root / "Annotations" / name).mkdir(parents=True)
        for t, (frame, mask) in enumerate(zip(video.frames, video.masks)):
            (root / "JPEGImages" / name / f"{t:05d}.jpg").write_bytes(encode_jpeg(frame, 90))
            image = Image.fromarray(mask, mode="P")
            image.putpalette([0, 0, 0, 200, 0, 0, 0, 200, 0, 0, 0, 200] + [255] * 756)
            buf = io.BytesIO()
            image.save(buf, format="PNG")
            (root / "Annotations" / name / f"{t:05d}.png").write_bytes(buf.getvalue())


class FolderClipLoader(ClipLoader):
    """The same loader (videos, seeds, sampler, augmentation, threads, prefetch, batching), but every
    sampled frame and mask is read from its own file, with no cache: the folder-reading baseline."""

    def __init__(self, folder_videos: dict[str, FolderVideo], *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.folder_videos = folder_videos

    def _record(self, dataset_index: int, name: str):  # noqa: ANN202 (a FolderVideo stands in for a record)
        return self.folder_videos[name]

    def _decoder(self, dataset_index: int):  # noqa: ANN202
        return decode_frame


def throughput(loader: ClipLoader, steps: int, warmup: int) -> float:
    """Samples per second over `steps` batches of `loader.iterate`, after `warmup` untimed ones."""
    batches = loader.iterate(total_steps=100 * (warmup + steps))  # progress stays in the first skip phase
    for _ in itertools.islice(batches, warmup):
        pass
    start = time.perf_counter()
    for _ in itertools.islice(batches, steps):
        pass
    elapsed = time.perf_counter() - start
    batches.close()
    return steps * loader.batch_size / elapsed


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, default=None, help="a DAVIS-layout folder (default: synthetic 854x480)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=12, help="timed batches per reader")
    parser.add_argument("--warmup", type=int, default=12, help="untimed batches first (caches fill)")
    parser.add_argument("--crop", type=int, default=384)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="corrvos-bench-") as tmp:
        source = args.source
        if source is None:
            source = Path(tmp) / "davis"
            write_synthetic_davis(source, videos=8, frames=30, height=480, width=854)
        started = time.perf_counter()
        manifest = ingest("davis", str(source), str(Path(tmp) / "parquet"), IngestConfig(engine="threads", workers=args.workers), progress=False)
        ingest_seconds = time.perf_counter() - started
        frames = manifest.counts["frames"]
        print(f"source: {source} ({manifest.counts['videos']} videos, {frames} frames)")
        print(f"ingestion: {frames / ingest_seconds:.1f} frames/s ({ingest_seconds:.2f} s, {args.workers} threads)")

        uri = str(Path(tmp) / "parquet")
        folders = {d: {v.name: FolderVideo(source, v.name, d) for v in manifest.videos} for d in ("pil", "cv2")}

        def config(decoded_cache_mb: int) -> DataConfig:
            loading = {"num_workers": args.workers, "decoded_cache_mb": decoded_cache_mb}
            return config_from_dict(DataConfig, {"augment": {"crop_size": args.crop}, "loader": loading})

        readers: dict[str, Callable[[], ClipLoader]] = {
            "parquet loader": lambda: ClipLoader(uri, args.batch, config=config(512)),
            "parquet loader, no decoded cache": lambda: ClipLoader(uri, args.batch, config=config(0)),
            "jpeg folders, PIL (STCN/XMem style)": lambda: FolderClipLoader(folders["pil"], uri, args.batch, config=config(0)),
            "jpeg folders, OpenCV": lambda: FolderClipLoader(folders["cv2"], uri, args.batch, config=config(0)),
        }
        results: dict[str, list[float]] = {name: [] for name in readers}
        for _ in range(args.rounds):  # interleaved rounds, median: other load on the machine hits all alike
            for name, make in readers.items():
                with make() as loader:
                    results[name].append(throughput(loader, args.steps, args.warmup))
        median = {name: statistics.median(values) for name, values in results.items()}
        print(f"batch {args.batch} x 3 frames at {args.crop}px, {args.workers} threads, {args.steps} timed batches,"
              f" median of {args.rounds} rounds")
        for name, values in results.items():
            print(f"{name:38s} {median[name]:7.1f} samples/s  (rounds: {', '.join(f'{v:.1f}' for v in values)})")
        folder_best = max(median["jpeg folders, PIL (STCN/XMem style)"], median["jpeg folders, OpenCV"])
        print(f"parquet loader vs the faster jpeg folder reader: {median['parquet loader'] / folder_best:.2f}x")
        print(f"parquet vs jpeg folders: {median['parquet loader'] / median['jpeg folders, PIL (STCN/XMem style)']:.2f}x samples/s")


if __name__ == "__main__":
    main()
