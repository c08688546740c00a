"""Data-plane benchmark: training samples/s of the corrvos loader against STCN's and XMem's way of loading.

    python -m bench.data                               # 300 YouTube-VOS-like videos at 1280x720 (temporary)
    python -m bench.data --data-dir /tmp/corrvos-bench-data   # keep the set there and reuse it next time
    python -m bench.data --source DAVIS_DIR --kind davis      # a dataset on disk instead

By default it writes a YouTube-VOS-like synthetic set (a few hundred 720p videos in `train/` layout,
far more decoded bytes than the loader's decoded-frame cache: at YouTube-VOS scale that cache holds
a sliver of the data) and ingests it to Parquet. Every reader draws the same clips (seeds, video
order, frame plan, augmentation, batching) with the same number of workers; they differ in where a
sampled frame comes from and how the work is spread:
- parquet loader: corrvos's `ClipLoader` with its defaults (row group read per video, OpenCV decode,
  encoded and decoded caches, decode threads); its cache hit rates over the timed clips are printed
  (counted in an untimed pass that builds batches on demand: threads running ahead blur the window);
- parquet loader, no decoded cache: the same, decoding every sampled frame afresh;
- jpeg folders, PIL, DataLoader processes: what STCN and XMem do, a map-style dataset that opens each
  sampled JPEG and PNG with PIL behind `torch.utils.data.DataLoader(num_workers=N)` (worker processes);
- jpeg folders, PIL / OpenCV, threads: the folder files read inside corrvos's loader pipeline.
Rounds are interleaved and the median is kept, since other load on the machine hits all alike. The
timed batches stay within the first epoch (each video once), as at YouTube-VOS scale. The last line is
the ratio of the parquet loader to the DataLoader baseline.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

from bench.data_sets import SyntheticSet, prepared_set
from bench.folder_readers import FolderClipLoader, ProcessLoader, folder_videos
from components.config import config_from_dict
from components.data.config import DataConfig, IngestConfig
from components.data.ingest import ingest
from components.data.loader import CacheCounts, ClipLoader
from components.data.sources import open_source
from components.training.batch import ClipBatch

BASELINE = "jpeg folders, PIL, DataLoader processes (STCN/XMem)"
PARQUET = "parquet loader (corrvos defaults)"
READERS = {"parquet": PARQUET, "parquet-nocache": "parquet loader, no decoded cache", "dataloader": BASELINE,
           "pil-threads": "jpeg folders, PIL, threads", "cv2-threads": "jpeg folders, OpenCV, threads"}


class Reader(Protocol):
    """What the timing loop needs of a reader: batches of a fixed size for a stage of `total_steps`."""

    batch_size: int

    def iterate(self, total_steps: int) -> Iterator[ClipBatch]: ...

    def __enter__(self) -> Reader: ...

    def __exit__(self, *exc: object) -> None: ...


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; the defaults are the headline figure's settings."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, default=None, help="a dataset folder (default: the synthetic set)")
    parser.add_argument("--kind", choices=("davis", "youtube-vos"), default="davis", help="layout of --source")
    parser.add_argument("--videos", type=int, default=SyntheticSet.videos, help="synthetic set: videos")
    parser.add_argument("--frames", type=int, default=SyntheticSet.frames, help="synthetic set: frames per video")
    parser.add_argument("--size", default=f"{SyntheticSet.width}x{SyntheticSet.height}", help="synthetic set: WxH")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="keep the synthetic set here and reuse it when it is there (default: a temporary folder)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=24, help="timed batches per reader and round")
    parser.add_argument("--warmup", type=int, default=4, help="untimed batches first (workers start, queues fill)")
    parser.add_argument("--crop", type=int, default=384)
    parser.add_argument("--workers", type=int, default=2, help="decode threads / DataLoader worker processes")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--decoded-cache-mb", type=int, default=None,
                        help="the parquet loader's decoded cache (default: the loader's own default)")
    parser.add_argument("--readers", default=",".join(READERS), help=f"comma-separated, from {', '.join(READERS)}")
    args = parser.parse_args(argv)
    args.readers = [r.strip() for r in args.readers.split(",") if r.strip()]
    unknown = sorted(set(args.readers) - set(READERS))
    if unknown or "parquet" not in args.readers or "dataloader" not in args.readers:
        parser.error(f"--readers: unknown {unknown}; parquet and dataloader are always compared")
    return args


def throughput(reader: Reader, steps: int, warmup: int) -> float:
    """Samples per second over `steps` batches of `reader`, after `warmup` untimed ones."""
    batches = reader.iterate(total_steps=_stage_length(steps, warmup))
    _consume(batches, warmup)
    start = time.perf_counter()
    _consume(batches, steps)
    elapsed = time.perf_counter() - start
    batches.close()
    return steps * reader.batch_size / elapsed


def timed_cache_counts(reader: ClipLoader, steps: int, warmup: int) -> dict[str, CacheCounts]:
    """Cache hits and lookups for exactly the clips `throughput` times, counted in an untimed pass.

    `reader` must build batches on demand (0 decode threads): threads that run ahead would count
    lookups for clips past the window, and how many depends on their timing.
    """
    if reader.config.loader.num_workers:
        raise ValueError("timed_cache_counts needs a loader without decode threads")
    batches = reader.iterate(total_steps=_stage_length(steps, warmup))
    _consume(batches, warmup)
    before = reader.cache_counts
    _consume(batches, steps)
    after = reader.cache_counts
    batches.close()
    return {k: CacheCounts(after[k].hits - before[k].hits, after[k].lookups - before[k].lookups, after[k].switched_off)
            for k in after}


def _stage_length(steps: int, warmup: int) -> int:
    """The stage the batches belong to: long, so that their progress stays in the first skip phase."""
    return 100 * (warmup + steps)


def _consume(batches: Iterator[ClipBatch], count: int) -> None:
    """Take `count` batches and drop them (the loader's work is what is measured)."""
    for _ in itertools.islice(batches, count):
        pass


def main(argv: list[str] | None = None) -> int:
    """Prepare the data, time every reader in interleaved rounds, print samples/s, hit rates and ratios."""
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="corrvos-bench-") as tmp:
        images_dir, annotations_dir, uri, videos = _prepare(args, Path(tmp))
        cache_mb = _cache_mb(args)
        folders = {d: folder_videos(images_dir, annotations_dir, uri, d) for d in ("pil", "cv2")}

        def config(decoded_cache_mb: int, workers: int = args.workers) -> DataConfig:
            loading = {"num_workers": workers, "decoded_cache_mb": decoded_cache_mb}
            return config_from_dict(DataConfig, {"augment": {"crop_size": args.crop}, "loader": loading})

        makers: dict[str, Callable[[], Reader]] = {
            PARQUET: lambda: ClipLoader(uri, args.batch, config=config(cache_mb)),
            READERS["parquet-nocache"]: lambda: ClipLoader(uri, args.batch, config=config(0)),
            BASELINE: lambda: ProcessLoader(folders["pil"], uri, args.batch, workers=args.workers, config=config(0)),
            READERS["pil-threads"]: lambda: FolderClipLoader(folders["pil"], uri, args.batch, config=config(0)),
            READERS["cv2-threads"]: lambda: FolderClipLoader(folders["cv2"], uri, args.batch, config=config(0)),
        }
        chosen = {READERS[key]: makers[READERS[key]] for key in args.readers}
        rates = _time_readers(chosen, args)
        caches = {name: _counts(uri, args, config(size, workers=0)) for name, size in
                  ((PARQUET, cache_mb), (READERS["parquet-nocache"], 0)) if name in chosen}
    samples = (args.warmup + args.steps) * args.batch
    print(f"batch {args.batch} x 3 frames at {args.crop}px, {args.workers} workers each, {args.steps} timed batches after"
          f" {args.warmup}, median of {args.rounds} rounds; clips {args.warmup * args.batch}..{samples - 1} timed, of"
          f" {videos} videos ({'within the first epoch' if samples <= videos else 'more than one epoch: videos come again'})")
    print(f"the parquet loader's caches: decoded {cache_mb} MB, encoded {DataConfig().loader.cache_mb} MB")
    median = {name: statistics.median(values) for name, values in rates.items()}
    for name, values in rates.items():
        hit = "".join(f"; {k} cache hit rate {c.hit_rate:.1%} ({c.hits}/{c.lookups}{', then switched off' * c.switched_off})"
                      for k, c in caches.get(name, {}).items())
        print(f"{name:52s} {median[name]:7.1f} samples/s  (rounds: {', '.join(f'{v:.1f}' for v in values)}{hit})")
    others = [name for name in median if name != BASELINE]
    print("vs the DataLoader baseline: " + ", ".join(f"{n} {median[n] / median[BASELINE]:.2f}x" for n in others))
    print(f"parquet loader vs STCN/XMem DataLoader (PIL, {args.workers} worker processes):"
          f" {median[PARQUET] / median[BASELINE]:.2f}x samples/s")
    return 0


def _prepare(args: argparse.Namespace, tmp: Path) -> tuple[str, str, str, int]:
    """(images folder, annotations folder, Parquet URI, videos) of the data to read; prints what it is and costs."""
    if args.source is not None:
        started = time.perf_counter()
        uri = str(tmp / "parquet")
        manifest = ingest(args.kind, str(args.source), uri, IngestConfig(engine="threads", workers=args.workers),
                          progress=False)
        seconds = time.perf_counter() - started
        frames = manifest.counts["frames"]
        print(f"source: {args.source} ({manifest.counts['videos']} videos, {frames} frames)")
        print(f"ingestion: {frames / seconds:.1f} frames/s ({seconds:.2f} s, {args.workers} threads)")
        source = open_source(args.kind, str(args.source))
        return source.images_dir, source.annotations_dir, uri, manifest.counts["videos"]
    width, height = (int(v) for v in args.size.lower().split("x"))
    spec = SyntheticSet(videos=args.videos, frames=args.frames, width=width, height=height)
    prepared = prepared_set(spec, args.data_dir or tmp, args.workers)
    frames = spec.videos * spec.frames
    print(f"synthetic YouTube-VOS-like set: {spec.videos} videos x {spec.frames} frames at {width}x{height}"
          f" ({prepared.split_root}), JPEG {prepared.jpeg_bytes / frames / 1e3:.0f} KB a frame,"
          f" {prepared.jpeg_bytes / 2**30:.2f} GiB of JPEG")
    print(f"decoded (RGB + ids): {spec.decoded_bytes / 2**30:.2f} GiB, "
          f"{spec.decoded_bytes / 2**20 / max(1, _cache_mb(args)):.0f}x the parquet loader's decoded cache")
    if prepared.write_seconds is None:
        print(f"set reused from {args.data_dir}")
    else:
        print(f"set written in {prepared.write_seconds:.1f} s ({args.workers} processes), ingested in"
              f" {prepared.ingest_seconds:.1f} s ({frames / prepared.ingest_seconds:.1f} frames/s, {args.workers} threads)")
    source = open_source("youtube-vos", str(prepared.split_root.parent), split="train")
    return source.images_dir, source.annotations_dir, prepared.parquet, spec.videos


def _cache_mb(args: argparse.Namespace) -> int:
    """The parquet loader's decoded cache in MB, as it will run."""
    return DataConfig().loader.decoded_cache_mb if args.decoded_cache_mb is None else args.decoded_cache_mb


def _time_readers(makers: dict[str, Callable[[], Reader]], args: argparse.Namespace) -> dict[str, list[float]]:
    """Samples/s of every reader in every round, the readers interleaved within each round."""
    rates: dict[str, list[float]] = {name: [] for name in makers}
    for _ in range(args.rounds):  # interleaved rounds, median: other load on the machine hits all alike
        for name, make in makers.items():
            with make() as reader:
                rates[name].append(throughput(reader, args.steps, args.warmup))
    return rates


def _counts(uri: str, args: argparse.Namespace, config: DataConfig) -> dict[str, CacheCounts]:
    """The parquet loader's cache counts over the timed clips (`timed_cache_counts`), in the reader's caches."""
    with ClipLoader(uri, args.batch, config=config) as loader:
        return timed_cache_counts(loader, args.steps, args.warmup)


if __name__ == "__main__":
    raise SystemExit(main())
