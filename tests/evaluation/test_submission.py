"""Round trips ingest -> predict-only -> archive, in each benchmark's layout, checked file by file."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from components.data.config import IngestConfig
from components.data.ingest import ingest
from components.errors import DataError
from components.evaluation.predictions import davis_palette
from components.evaluation.submission import benchmark_for, check_archive, write_submission
from components.evaluation.videos import dataset_videos
from tests.benchmark_layouts import (
    OWN_PALETTE,
    PlannedVideo,
    make_davis_test_dev,
    make_mose_valid,
    make_youtube_vos_valid,
)
from tests.evaluation.videos_util import small_model

THREADS = IngestConfig(engine="threads", workers=2)


@pytest.fixture(scope="module")
def model():
    return small_model()


def _round_trip(model, kind: str, source: Path, out: Path, **kwargs):
    uri = str(out / "dataset")
    ingest(kind, str(source), uri, THREADS, progress=False)
    return write_submission(model, dataset_videos(uri), out / "sub", benchmark_for(kind), progress=False, **kwargs)


def _entries(archive: Path) -> dict[str, Image.Image]:
    with zipfile.ZipFile(archive) as zf:
        return {name: Image.open(io.BytesIO(zf.read(name))) for name in zf.namelist()}


def assert_layout(archive: Path, prefix: str, plans: list[PlannedVideo], palette: list[int], all_frames: bool = False):
    """Names, sizes, mode and palette of every entry, from the generator's plan."""
    entries = _entries(archive)
    wanted = {f"{prefix}{p.name}/{f}.png": p for p in plans for f in (p.frames if all_frames else p.archive_frames)}
    assert sorted(entries) == sorted(wanted)
    for name, image in entries.items():
        plan = wanted[name]
        assert image.mode == "P" and image.size == (plan.width, plan.height), name
        assert image.getpalette("RGB")[: len(palette)] == palette[: len(image.getpalette("RGB"))], name
    return entries


def test_youtube_vos_valid_scored_frames_and_late_object(model, tmp_path: Path) -> None:
    plans = make_youtube_vos_valid(tmp_path / "ytvos")
    sub = _round_trip(model, "youtube-vos", tmp_path / "ytvos", tmp_path)
    entries = assert_layout(sub.archive, "Annotations/", plans, OWN_PALETTE)
    late = next(p for p in plans if p.late_object_frame)
    ids = {f: set(np.unique(np.asarray(entries[f"Annotations/late/{f}.png"])).tolist()) for f in late.archive_frames}
    assert all(2 not in ids[f] for f in late.archive_frames if f < late.late_object_frame)
    assert 2 in ids[late.late_object_frame]  # the late object joins where meta.json says it appears
    assert sub.sha256 == hashlib.sha256(sub.archive.read_bytes()).hexdigest()
    summary = json.loads(sub.archive.with_name(f"{sub.archive.name}.json").read_text())
    assert summary["sha256"] == sub.sha256 and summary["files"] == len(entries)


def test_youtube_vos_all_frames_variant(model, tmp_path: Path) -> None:
    plans = make_youtube_vos_valid(tmp_path / "ytvos", all_frames=True)
    scored = _round_trip(model, "youtube-vos", tmp_path / "ytvos", tmp_path / "a")
    assert_layout(scored.archive, "Annotations/", plans, OWN_PALETTE)
    every = _round_trip(model, "youtube-vos", tmp_path / "ytvos", tmp_path / "b", all_frames=True)
    assert_layout(every.archive, "Annotations/", plans, OWN_PALETTE, all_frames=True)
    # the frames both archives hold carry the same predictions
    a, b = _entries(scored.archive), _entries(every.archive)
    assert all(np.array_equal(np.asarray(a[n]), np.asarray(b[n])) for n in a)


def test_mose_valid_every_frame_at_the_top_level(model, tmp_path: Path) -> None:
    plans = make_mose_valid(tmp_path / "mose")
    sub = _round_trip(model, "mose", tmp_path / "mose", tmp_path)
    assert_layout(sub.archive, "", plans, OWN_PALETTE)
    again = _round_trip(model, "mose", tmp_path / "mose", tmp_path / "again")
    assert again.sha256 == sub.sha256  # fixed entry order and times: the same predictions, the same bytes


def test_davis_test_dev_every_frame_with_the_davis_palette(model, tmp_path: Path) -> None:
    plans = make_davis_test_dev(tmp_path / "davis", list(davis_palette()))
    sub = _round_trip(model, "davis", tmp_path / "davis", tmp_path)
    assert_layout(sub.archive, "", plans, list(davis_palette()))


def test_check_archive_names_the_broken_entry(model, tmp_path: Path) -> None:
    make_mose_valid(tmp_path / "mose")
    sub = _round_trip(model, "mose", tmp_path / "mose", tmp_path)
    entries = {n: bytes(zipfile.ZipFile(sub.archive).read(n)) for n in zipfile.ZipFile(sub.archive).namelist()}

    def rewrite(name: str, change) -> Path:
        broken = tmp_path / f"broken-{len(list(tmp_path.glob('broken-*')))}.zip"
        with zipfile.ZipFile(broken, "w") as zf:
            for entry, data in entries.items():
                if entry != name:
                    zf.writestr(entry, data)
                elif change is not None:
                    zf.writestr(*change(entry, data))
        return broken

    def resized(entry: str, data: bytes):
        image = Image.open(io.BytesIO(data))
        small = image.resize((image.width - 2, image.height))
        buffer = io.BytesIO()
        small.save(buffer, format="PNG")
        return entry, buffer.getvalue()

    with pytest.raises(DataError, match="m1/00003.png is missing"):
        check_archive(rewrite("m1/00003.png", None), sub.benchmark, sub.expected)
    with pytest.raises(DataError, match=r"m2/00000.png is P 48x38, expected P 50x38"):
        check_archive(rewrite("m2/00000.png", resized), sub.benchmark, sub.expected)
    with pytest.raises(DataError, match="Annotations/m1/00000.png is not part of the mose layout"):
        check_archive(rewrite("m1/00000.png", lambda e, d: (f"Annotations/{e}", d)), sub.benchmark, sub.expected)


def test_bad_benchmark_inputs_are_one_line_errors(tmp_path: Path) -> None:
    make_youtube_vos_valid(tmp_path / "ytvos")
    meta_path = tmp_path / "ytvos/valid/meta.json"
    meta = json.loads(meta_path.read_text())
    meta["videos"]["late"]["objects"]["2"]["frames"].append("00030")
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(DataError, match=r"valid/meta.json: video 'late' object 2 lists frame '00030', which is not"):
        ingest("youtube-vos", str(tmp_path / "ytvos"), str(tmp_path / "out"), THREADS, progress=False)
    meta["videos"]["late"]["objects"]["2"]["frames"] = ["00005", "00010"]  # says it appears before its mask
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(DataError, match=r"Annotations/late/00005.png: meta.json says object 2 first appears"):
        ingest("youtube-vos", str(tmp_path / "ytvos"), str(tmp_path / "out"), THREADS, progress=False)
    make_mose_valid(tmp_path / "mose")
    write = Image.fromarray(np.zeros((20, 20), np.uint8), mode="P")
    write.putpalette(OWN_PALETTE)
    write.save(tmp_path / "mose/valid/Annotations/m2/00000.png")
    with pytest.raises(DataError, match=r"m2/00000.png: mask size 20x20 differs from its frame 50x38"):
        ingest("mose", str(tmp_path / "mose"), str(tmp_path / "out2"), THREADS, progress=False)


def test_a_mose_first_mask_without_objects_is_refused(tmp_path: Path) -> None:
    make_mose_valid(tmp_path / "mose")
    empty = Image.fromarray(np.zeros((40, 56), np.uint8), mode="P")
    empty.putpalette(OWN_PALETTE)
    empty.save(tmp_path / "mose/valid/Annotations/m1/00000.png")
    with pytest.raises(DataError, match=r"valid/Annotations/m1/00000.png: the first mask holds no object"):
        ingest("mose", str(tmp_path / "mose"), str(tmp_path / "out"), THREADS, progress=False)
