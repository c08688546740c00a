"""`corrvos ingest`: turn a VOS dataset folder into Parquet shards + manifest.json on any storage URI."""

from __future__ import annotations

import argparse

from components.data.config import IngestConfig
from components.data.ingest import ingest
from components.data.sources import KINDS
from components.errors import ConfigError
from pipelines.cli import local_path_or_uri

NAME = "ingest"
HELP = "ingest a DAVIS / YouTube-VOS / static / synthetic dataset into Parquet shards on a storage URI"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kind", required=True, choices=KINDS, help="dataset layout")
    parser.add_argument(
        "--source",
        default="",
        help="dataset folder or fsspec URI; for synthetic a spec like 'videos=32,frames=24,size=96,seed=0'",
    )
    parser.add_argument("--out", required=True, type=local_path_or_uri,
                        help="output URI: a local path, file://... or s3://bucket/prefix")
    parser.add_argument("--short-side", type=int, default=None, help="downscale so the shorter side is N pixels")
    parser.add_argument("--on-error", choices=("fail", "skip"), default="fail", help="what to do with a bad video")
    parser.add_argument("--overwrite", action="store_true", help="replace a finished dataset at --out")
    parser.add_argument("--split", default=None, help="DAVIS ImageSets split (e.g. train) or YouTube-VOS split folder")
    parser.add_argument("--resolution", default=None, help="DAVIS resolution folder (default 480p when present)")
    parser.add_argument("--engine", choices=("ray", "threads"), default="ray", help="parallel readers: Ray tasks or threads")
    parser.add_argument("--workers", type=int, default=None, help="parallel readers (default: every CPU)")
    parser.add_argument("--jpeg-quality", type=int, default=90, help="quality of re-encoded frames (with --short-side)")


def run(args: argparse.Namespace) -> int:
    if args.kind != "synthetic" and not args.source:
        raise ConfigError(f"--source is required for --kind {args.kind}")
    source_arguments(args)
    try:
        config = IngestConfig(
            short_side=args.short_side,
            jpeg_quality=args.jpeg_quality,
            on_error=args.on_error,
            engine=args.engine,
            workers=args.workers,
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    from components.storage import check_storage_root, storage_errors

    check_storage_root(args.out)
    with storage_errors(args.out):
        manifest = ingest(
            args.kind,
            args.source,
            args.out,
            config,
            overwrite=args.overwrite,
            split=args.split,
            resolution=args.resolution,
        )
    counts = manifest.counts
    print(
        f"{args.out}: {counts['videos']} videos, {counts['frames']} frames ({counts['annotated_frames']} annotated),"
        f" {counts['objects']} objects in {len(manifest.shards)} shard(s); version {manifest.content_hash}"
    )
    for item in manifest.skipped:
        print(f"skipped {item['video']}: {item['reason']}")
    return 0


def source_arguments(args: argparse.Namespace) -> None:
    """Make `--source` absolute when it is a folder (Ray tasks read it); a synthetic spec is not a path."""
    if args.kind != "synthetic":
        args.source = local_path_or_uri(args.source)
