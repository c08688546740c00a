"""`bench.data` at toy sizes: its readers draw the same clips, its set is cached, and its figures add up.

The comparison is only fair if every reader builds the very same batches (the Parquet loader with its
caches, the folder readers in threads, and STCN's/XMem's DataLoader with worker processes), so that
is checked batch by batch; the printed ratios are recomputed from the printed samples/s, and the hit
rates from the printed hit and lookup counts.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from bench import data
from bench.data_sets import DONE, SyntheticSet, prepared_set
from bench.folder_readers import FolderClipLoader, ProcessLoader, folder_videos
from components.config import config_from_dict
from components.data.config import DataConfig
from components.data.loader import ClipLoader
from components.data.sources import open_source
from tests.test_bench import _assert_ratio, _last_ratio, _line

TINY = SyntheticSet(videos=4, frames=6, width=96, height=64)


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory: pytest.TempPathFactory):
    return prepared_set(TINY, tmp_path_factory.mktemp("bench-data"), workers=2)


def _batches(reader, steps: int) -> list:
    with reader:
        return list(reader.iterate(total_steps=steps))


def test_every_reader_draws_the_same_clips(tiny_set) -> None:
    config = config_from_dict(DataConfig, {"augment": {"crop_size": 32}, "loader": {"num_workers": 2}})
    source = open_source("youtube-vos", str(tiny_set.split_root.parent), split="train")
    pil = folder_videos(source.images_dir, source.annotations_dir, tiny_set.parquet, "pil")
    cv2 = folder_videos(source.images_dir, source.annotations_dir, tiny_set.parquet, "cv2")
    assert {v.annotation_interval for v in pil.values()} == {5}  # YouTube-VOS train: every 5th frame stored
    readers = {
        "parquet": ClipLoader(tiny_set.parquet, 2, config=config),
        "pil threads": FolderClipLoader(pil, tiny_set.parquet, 2, config=config),
        "cv2 threads": FolderClipLoader(cv2, tiny_set.parquet, 2, config=config),
        "dataloader processes": ProcessLoader(pil, tiny_set.parquet, 2, workers=2, config=config),
    }
    batches = {name: _batches(reader, 4) for name, reader in readers.items()}  # 8 clips: two epochs of 4 videos
    reference = batches.pop("parquet")
    assert len(reference) == 4
    for name, other in batches.items():
        assert len(other) == 4, name
        for ours, theirs in zip(reference, other):
            assert torch.equal(ours.masks, theirs.masks) and torch.equal(ours.selector, theirs.selector), name
            # the same JPEG bytes decoded by OpenCV (Parquet) and by PIL or OpenCV from the file
            assert torch.equal(ours.frames, theirs.frames), name


def test_a_prepared_set_is_reused_and_another_description_gets_its_own(tmp_path: Path) -> None:
    first = prepared_set(TINY, tmp_path, workers=1)
    assert first.write_seconds is not None and first.ingest_seconds is not None
    frame = next((first.split_root / "JPEGImages").rglob("*.jpg"))
    stamp = frame.stat().st_mtime_ns
    again = prepared_set(TINY, tmp_path, workers=1)
    assert again.write_seconds is None and again.parquet == first.parquet and frame.stat().st_mtime_ns == stamp
    assert again.jpeg_bytes == first.jpeg_bytes == sum(p.stat().st_size for p in first.split_root.rglob("*.jpg"))
    other = prepared_set(SyntheticSet(videos=2, frames=3, width=64, height=48), tmp_path, workers=1)
    assert other.split_root != first.split_root and first.split_root.is_dir()
    meta = json.loads((other.split_root / "meta.json").read_text())
    assert sorted(meta["videos"]) == ["synthetic-0000", "synthetic-0001"]
    assert sorted(p.name for p in (other.split_root / "JPEGImages" / "synthetic-0000").iterdir()) == [
        "00000.jpg", "00005.jpg", "00010.jpg"]
    (tmp_path / TINY.key / DONE).unlink()  # as an interrupted run leaves it: written again
    assert prepared_set(TINY, tmp_path, workers=1).write_seconds is not None


READER_ROW = r"(?P<name>.+?)\s+(?P<rate>[\d.]+) samples/s  \(rounds: [\d., ]+(?P<caches>(; .*)?)\)$"
CACHE = re.compile(r"; (\w+) cache hit rate ([\d.]+)% \((\d+)/(\d+)\)")


def test_bench_prints_hit_rates_and_ratios_it_measured(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # 4 videos, 2 + 6 clips: clips 2, 3 are the first epoch's last (misses), 4..7 the second's (each video again)
    code = data.main(["--videos", "4", "--frames", "6", "--size", "96x64", "--data-dir", str(tmp_path), "--crop", "32",
                      "--batch", "2", "--warmup", "1", "--steps", "3", "--rounds", "1"])
    output = capsys.readouterr().out
    assert code == 0
    assert "more than one epoch" in output and "decoded (RGB + ids): 0.00 GiB" in output
    rows = {m["name"].strip(): m for m in map(re.compile(READER_ROW).match, output.splitlines()) if m}
    assert set(rows) == {data.READERS[key] for key in data.READERS}
    for name, row in rows.items():
        caches = {m[1]: (float(m[2]), int(m[3]), int(m[4])) for m in CACHE.finditer(row["caches"])}
        if name.startswith("parquet"):
            assert set(caches) == {"encoded", "decoded"}, name
            for rate, hits, lookups in caches.values():
                assert lookups > 0 and abs(rate - 100 * hits / lookups) < 0.06
            assert caches["encoded"][1:] == (4, 6)  # 6 timed clips; the last 4 are videos read in epoch 0
        else:
            assert caches == {}, name  # folder readers have no cache
        if name == data.PARQUET:
            assert caches["decoded"][1] > 0  # the set fits in the cache: some sampled frames come again
    rates = {name: float(row["rate"]) for name, row in rows.items()}
    vs = _line(output, r"vs the DataLoader baseline: (.*)$")[1]
    for name, ratio in re.findall(r"(.+?) ([\d.]+)x(?:, |$)", vs):
        _assert_ratio(float(ratio), rates[name], rates[data.BASELINE], 1)
    _assert_ratio(_last_ratio(output, "parquet loader vs STCN/XMem DataLoader"), rates[data.PARQUET],
                  rates[data.BASELINE], 1)
