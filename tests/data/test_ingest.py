"""`corrvos ingest`: round trips, content hash, overwrite, and every bad input of the issue."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from components.data.config import IngestConfig
from components.data.dataset import VideoDataset
from components.data.ingest import ingest
from components.errors import DataError
from pipelines.cli import main
from tests.data.conftest import break_video, leftovers, make_davis

THREADS = IngestConfig(engine="threads")


def _cli(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    code = main(["ingest", "--engine", "threads", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_round_trip_is_byte_identical_for_frames_and_equal_for_masks(davis16: Path, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    manifest = ingest("davis", str(davis16), str(out), THREADS, progress=False)
    assert manifest.counts == {"videos": 3, "frames": 18, "annotated_frames": 18, "objects": 3}
    written = json.loads((out / "manifest.json").read_text())
    assert written["counts"] == manifest.counts and written["content_hash"] == manifest.content_hash
    assert written["source"]["kind"] == "davis" and written["shards"][0]["path"].startswith("parts-")
    dataset = VideoDataset(str(out))
    for name in ("alpha", "gamma"):
        record = dataset.read(name)
        for stem, blob in zip(record.frame_names, record.frames):
            assert blob == (davis16 / "JPEGImages" / name / f"{stem}.jpg").read_bytes()
            truth = np.asarray(Image.open(davis16 / "Annotations" / name / f"{stem}.png")) == 255
            assert np.array_equal(record.mask(record.frame_names.index(stem)), truth.astype(np.uint8))


def test_same_source_gives_same_hash_and_finished_output_is_protected(davis16: Path, tmp_path: Path, capsys) -> None:
    first = ingest("davis", str(davis16), str(tmp_path / "a"), THREADS, progress=False)
    again = ingest("davis", str(davis16), str(tmp_path / "b"), IngestConfig(engine="threads", workers=1, row_group_mb=1), progress=False)
    assert first.content_hash == again.content_hash
    code, _, err = _cli(capsys, "--kind", "davis", "--source", str(davis16), "--out", str(tmp_path / "a"))
    assert code == 1 and "already holds a finished dataset" in err and "--overwrite" in err
    old_parts = {p.name for p in (tmp_path / "a").glob("parts-*")}
    code, out, _ = _cli(capsys, "--kind", "davis", "--source", str(davis16), "--out", str(tmp_path / "a"), "--overwrite")
    assert code == 0 and first.content_hash in out
    new_parts = {p.name for p in (tmp_path / "a").glob("parts-*")}
    assert len(new_parts) == 1 and not new_parts & old_parts  # the replaced shards are gone


def test_resize_short_side_is_deterministic_and_keeps_ids(davis17: Path, tmp_path: Path) -> None:
    config = IngestConfig(engine="threads", short_side=16)
    a = ingest("davis", str(davis17), str(tmp_path / "a"), config, progress=False)
    b = ingest("davis", str(davis17), str(tmp_path / "b"), config, progress=False)
    assert a.content_hash == b.content_hash
    record = VideoDataset(str(tmp_path / "a")).read("duo")
    assert (record.height, record.width) == (16, 24) and record.frame(0).shape == (16, 24, 3)
    assert set(np.unique(record.mask(0))) == {0, 1, 2}


BAD = ["unreadable", "truncated", "mask size", "mask without image", "antialiasing", "empty sequence"]
PROBLEM = {
    "unreadable": "unreadable JPEG",
    "truncated": "truncated JPEG",
    "mask size": "mask size 10x10 differs",
    "mask without image": "annotated frame without its image",
    "antialiasing": "anti-aliased",
    "empty sequence": "empty sequence",
}


@pytest.mark.parametrize("kind", BAD)
def test_bad_input_fails_with_one_line_and_leaves_nothing(kind: str, davis16: Path, tmp_path: Path, capsys) -> None:
    named = break_video(kind, davis16)
    out = tmp_path / "out"
    code, _, err = _cli(capsys, "--kind", "davis", "--source", str(davis16), "--out", str(out))
    line = err.strip().splitlines()[-1]
    assert code == 1
    assert line.startswith("corrvos ingest: error: ") and named in line and PROBLEM[kind] in line
    assert "Traceback" not in err
    assert leftovers(out) == []  # no manifest, no shards


@pytest.mark.parametrize("kind", BAD)
def test_bad_input_skip_lists_the_video_in_the_manifest(kind: str, davis16: Path, tmp_path: Path, capsys) -> None:
    named = break_video(kind, davis16)
    out = tmp_path / "out"
    code, stdout, _ = _cli(capsys, "--kind", "davis", "--source", str(davis16), "--out", str(out), "--on-error", "skip")
    assert code == 0 and "skipped beta" in stdout
    manifest = json.loads((out / "manifest.json").read_text())
    assert [v["name"] for v in manifest["videos"]] == ["alpha", "gamma"]
    assert manifest["skipped"][0]["video"] == "beta" and named in manifest["skipped"][0]["reason"]


def test_unknown_layout_fails_even_with_skip(tmp_path: Path, capsys) -> None:
    (tmp_path / "odd").mkdir()
    (tmp_path / "odd/readme.txt").write_text("x")
    code, _, err = _cli(capsys, "--kind", "youtube-vos", "--source", str(tmp_path / "odd"), "--out", str(tmp_path / "o"),
                        "--on-error", "skip")
    assert code == 1 and "odd: unknown layout" in err.strip().splitlines()[-1]
    assert not (tmp_path / "o").exists()


def test_every_video_skipped_is_an_error(davis16: Path, tmp_path: Path) -> None:
    for name in ("alpha", "beta", "gamma"):
        (davis16 / "JPEGImages" / name / "00000.jpg").write_bytes(b"junk")
    with pytest.raises(DataError, match="every video was skipped"):
        ingest("davis", str(davis16), str(tmp_path / "o"), IngestConfig(engine="threads", on_error="skip"), progress=False)
    assert leftovers(tmp_path / "o") == []


def test_failure_after_shards_were_written_removes_them(tmp_path: Path) -> None:
    """Large frames make row groups flush before the last video, whose broken frame then fails the run."""
    root = make_davis(tmp_path / "big", {"a": 4, "b": 4, "c": 4}, size=(256, 384))
    config = IngestConfig(engine="threads", workers=1, row_group_mb=1, shard_mb=1)
    healthy = ingest("davis", str(root), str(tmp_path / "ok"), config, progress=False)
    assert healthy.videos[-1].row_group >= 1  # earlier videos are in the shard file before the last one comes
    frame = root / "JPEGImages/c/00003.jpg"
    frame.write_bytes(frame.read_bytes()[:5000])
    with pytest.raises(DataError, match="c/00003.jpg: truncated JPEG"):
        ingest("davis", str(root), str(tmp_path / "o"), config, progress=False)
    assert leftovers(tmp_path / "o") == []


def test_youtube_vos_and_static_and_synthetic_ingest(ytvos: Path, tmp_path: Path) -> None:
    from tests.data.conftest import make_static_two_folders

    yt = ingest("youtube-vos", str(ytvos), str(tmp_path / "yt"), THREADS, progress=False)
    assert yt.counts == {"videos": 2, "frames": 12, "annotated_frames": 12, "objects": 4}
    assert {v.annotation_interval for v in yt.videos} == {5}
    st = ingest("static", str(make_static_two_folders(tmp_path / "duts")), str(tmp_path / "st"), THREADS, progress=False)
    assert st.kind == "static" and st.counts["frames"] == 3
    syn = ingest("synthetic", "videos=4,frames=6,size=32", str(tmp_path / "syn"), THREADS, progress=False)
    assert syn.counts["videos"] == 4 and syn.counts["frames"] == 24
    assert VideoDataset(str(tmp_path / "syn")).read("synthetic-00002").extras["index"] == 2


def test_real_davis_sample_round_trip(davis_sample: Path, tmp_path: Path) -> None:
    manifest = ingest("davis", str(davis_sample), str(tmp_path / "d"), THREADS, progress=False)
    assert manifest.counts == {"videos": 3, "frames": 217, "annotated_frames": 217, "objects": 3}
    record = VideoDataset(str(tmp_path / "d")).read("bear")
    assert record.frames[40] == (davis_sample / "JPEGImages/bear/00040.jpg").read_bytes()
    truth = np.asarray(Image.open(davis_sample / "Annotations/bear/00077.png").convert("L")) == 255  # an LA file
    assert np.array_equal(record.mask(77), truth.astype(np.uint8))


def test_corrupt_manifest_is_reported_and_overwrite_replaces_it(davis16: Path, tmp_path: Path) -> None:
    out = tmp_path / "o"
    ingest("davis", str(davis16), str(out), THREADS, progress=False)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["videos"] = manifest["videos"][:1]  # edited by hand: the hash no longer matches
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DataError, match="content hash does not match"):
        VideoDataset(str(out))
    with pytest.raises(DataError, match="content hash does not match"):
        ingest("davis", str(davis16), str(out), THREADS, progress=False)
    assert len(ingest("davis", str(davis16), str(out), THREADS, overwrite=True, progress=False).videos) == 3
    assert len(VideoDataset(str(out))) == 3
