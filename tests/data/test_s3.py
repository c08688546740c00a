"""The S3 path end to end against a real S3-compatible server (moto_server on 127.0.0.1)."""

from __future__ import annotations

from pathlib import Path

import s3fs

from components.data.config import DataConfig, IngestConfig, LoaderConfig, VideoAugmentConfig
from components.data.dataset import VideoDataset
from components.data.ingest import ingest
from components.data.loader import ClipLoader
from pipelines.cli import main


def test_ingest_to_s3_reads_back_and_loads(davis16: Path, s3_env, capsys) -> None:
    bucket, options = s3_env
    uri = f"s3://{bucket}/datasets/davis16"
    manifest = ingest("davis", str(davis16), uri, IngestConfig(engine="threads"), storage_options=options, progress=False)
    local = ingest("davis", str(davis16), str(davis16.parent / "local"), IngestConfig(engine="threads"), progress=False)
    assert manifest.content_hash == local.content_hash
    fs = s3fs.S3FileSystem(**options, skip_instance_cache=True)
    assert fs.exists(f"{bucket}/datasets/davis16/manifest.json")
    dataset = VideoDataset(uri, storage_options=options)
    record = dataset.read("gamma")
    assert record.frames[3] == (davis16 / "JPEGImages/gamma/00003.jpg").read_bytes()
    config = DataConfig(augment=VideoAugmentConfig(crop_size=32), loader=LoaderConfig(num_workers=1))
    with ClipLoader(uri, 2, config=config, storage_options=options) as loader:
        batch = next(loader.iterate(total_steps=1))
    assert tuple(batch.frames.shape) == (2, 3, 3, 32, 32)


def test_cli_ingest_to_s3_refuses_overwrite_and_fails_cleanly(davis16: Path, s3_env, capsys) -> None:
    bucket, options = s3_env
    uri = f"s3://{bucket}/d"
    assert main(["ingest", "--kind", "davis", "--source", str(davis16), "--out", uri, "--engine", "threads"]) == 0
    assert main(["ingest", "--kind", "davis", "--source", str(davis16), "--out", uri, "--engine", "threads"]) == 1
    assert "already holds a finished dataset" in capsys.readouterr().err
    (davis16 / "JPEGImages/beta/00001.jpg").write_bytes(b"junk")
    failed = f"s3://{bucket}/failed"
    assert main(["ingest", "--kind", "davis", "--source", str(davis16), "--out", failed, "--engine", "threads"]) == 1
    assert "beta/00001.jpg" in capsys.readouterr().err.strip().splitlines()[-1]
    fs = s3fs.S3FileSystem(**options, skip_instance_cache=True)
    assert fs.find(f"{bucket}/failed") == []  # neither shards nor manifest
