"""Ingestion: read a source's videos in parallel, write Parquet shards, commit with the manifest.

Shards go to a fresh `parts-<id>/` prefix that nothing references until `manifest.json` is written
last; a failure removes the prefix, so a reader never sees half a dataset. A prefix a killed ingest
left behind is swept by the next ingest of that output (`shards.sweep_orphan_prefixes`). Videos are read in
parallel (Ray tasks, or threads for small jobs) but written in name order, so the content hash
never depends on scheduling.
"""

from __future__ import annotations

import datetime
import posixpath
import sys
import uuid
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterator

from tqdm import tqdm

from components.data.config import IngestConfig
from components.data.manifest import Manifest, open_root, read_manifest, write_manifest
from components.data.selection import VideoSelection
from components.data.shards import ShardWriter, claim_prefix, new_prefix_name, release_prefix, sweep_orphan_prefixes
from components.data.sources import ReadOptions, VideoSource, open_source
from components.errors import DataError

Outcome = tuple[str, dict[str, Any] | None, str | None]  # (name, row, error)


def ingest(
    kind: str,
    source: str,
    out: str,
    config: IngestConfig = IngestConfig(),
    *,
    overwrite: bool = False,
    split: str | None = None,
    resolution: str | None = None,
    storage_options: dict[str, Any] | None = None,
    progress: bool = True,
    select: VideoSelection | None = None,
) -> Manifest:
    """Ingest the dataset of `kind` at `source` into `out` (path or fsspec URI) and return its manifest.

    `select` keeps a subset of the source's videos (named ones, exclusions, one side of a hold-out split).
    """
    src = open_source(kind, source, split=split, resolution=resolution)
    names = src.list_videos()
    if not names:
        raise DataError(f"{source}: no videos found")
    if select is not None and not select.is_everything:
        names = select.apply(names, source)
    fs, root = open_root(out, storage_options)
    try:
        previous = read_manifest(fs, root, out)
    except DataError:
        if not overwrite:
            raise
        previous = None  # an unreadable manifest is replaced too; its shards cannot be known
    if previous is not None and not overwrite:
        raise DataError(
            f"{out}: already holds a finished dataset (content hash {previous.content_hash[:12]}); pass --overwrite to replace it"
        )
    prefix = new_prefix_name(datetime.datetime.now(datetime.timezone.utc), uuid.uuid4().hex[:8])
    writer = ShardWriter(fs, root, prefix, config.shard_mb << 20, config.row_group_mb << 20)
    options = ReadOptions(short_side=config.short_side, jpeg_quality=config.jpeg_quality)
    skipped: list[dict[str, str]] = []
    outcomes = None
    try:
        claim_prefix(fs, root, prefix)
        outcomes = _read_all(src, names, options, config)
        for name, row, error in tqdm(outcomes, total=len(names), desc=f"ingest {kind}", unit="video", disable=not progress):
            if error is not None:
                if config.on_error == "fail":
                    raise DataError(error)
                skipped.append({"video": name, "reason": error})
                continue
            writer.add(row)
        shards, videos = writer.close()
        if not videos:
            raise DataError(f"{source}: every video was skipped; first problem: {skipped[0]['reason']}")
        manifest = Manifest(
            source={"kind": kind, "location": source, "split": split, "resolution": getattr(src, "resolution", None),
                    **({"select": select.to_json()} if select is not None and not select.is_everything else {})},
            options={"short_side": config.short_side, "jpeg_quality": config.jpeg_quality},
            shards=shards,
            videos=videos,
            skipped=skipped,
            created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        )
        write_manifest(fs, root, manifest)
    except BaseException:
        if outcomes is not None:
            outcomes.close()  # stops the readers (and a Ray started here) before cleaning up
        writer.abort()
        _remove(fs, posixpath.join(root, prefix))
        raise
    release_prefix(fs, root, prefix)
    if previous is not None:
        for old in {posixpath.dirname(s.path) for s in previous.shards} - {prefix}:
            _remove(fs, posixpath.join(root, old))
    swept = sweep_orphan_prefixes(fs, root, keep={prefix})
    if swept and progress:
        print(f"{out}: removed {len(swept)} unfinished shard folder(s) of killed ingests: {', '.join(swept)}",
              file=sys.stderr)
    return manifest


def _read_all(src: VideoSource, names: list[str], options: ReadOptions, config: IngestConfig) -> Iterator[Outcome]:
    """Outcomes in name order, computed in parallel with at most a few videos in flight per worker."""
    if config.engine == "ray":
        return _read_with_ray(src, names, options, config.workers)
    workers = config.workers or 2
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ingest")
    return _ordered(names, lambda name: pool.submit(_read_one, src, name, options), lambda f: f.result(),
                    window=4 * workers, on_exit=lambda: pool.shutdown(cancel_futures=True))


def _read_with_ray(src: VideoSource, names: list[str], options: ReadOptions, workers: int | None) -> Iterator[Outcome]:
    import ray  # imported here: starting Ray is only worth it for this engine

    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=workers, include_dashboard=False, configure_logging=False, log_to_driver=False)
    task = ray.remote(num_cpus=1, max_retries=0)(_read_one)
    src_ref = ray.put(src)
    window = 4 * int(ray.available_resources().get("CPU", 1) or 1)

    def stop() -> None:
        if started:
            ray.shutdown()

    return _ordered(names, lambda name: task.remote(src_ref, name, options), ray.get, window=window, on_exit=stop)


def _ordered(
    names: list[str], submit: Callable[[str], Any], result: Callable[[Any], Outcome], window: int, on_exit: Callable[[], None]
) -> Iterator[Outcome]:
    """Submit ahead by `window`, yield results in submission order, and always run `on_exit`."""
    pending: deque = deque()
    todo = iter(names)
    try:
        for name in todo:
            pending.append(submit(name))
            if len(pending) >= window:
                break
        while pending:
            outcome = result(pending.popleft())
            for name in todo:
                pending.append(submit(name))
                break
            yield outcome
    finally:
        on_exit()


def _read_one(src: VideoSource, name: str, options: ReadOptions) -> Outcome:
    """Read one video; bad input becomes an error string rather than an exception."""
    try:
        return name, src.read(name, options).to_row(), None
    except DataError as exc:
        return name, None, str(exc)


def _remove(fs: Any, path: str) -> None:
    try:
        if fs.exists(path):
            fs.rm(path, recursive=True)
    except FileNotFoundError:
        pass
