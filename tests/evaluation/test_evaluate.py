"""evaluate_videos: predictions in DAVIS layout, in-memory scores equal to the folder scorer's, reports,
atomic sequences, and both video sources (a DAVIS folder, an ingested dataset)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from components.config import InferenceConfig
from components.errors import DataError
from components.evaluation import score_folders
from components.evaluation.evaluate import evaluate_videos
from components.evaluation.masks import read_label_map
from components.evaluation.videos import EvalVideo, davis_videos, first_appearances
from tests.evaluation.videos_util import hidden_leftovers, moving_squares, small_model, write_davis

FAST = InferenceConfig(memory_every=2)


@pytest.fixture(scope="module")
def model():
    return small_model()


@pytest.fixture(scope="module")
def davis(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_davis(tmp_path_factory.mktemp("davis"), {"alpha": 6, "beta": 5}, objects=2)


def test_davis_folder_end_to_end(model, davis: Path, tmp_path: Path) -> None:
    out = tmp_path / "eval"
    run = evaluate_videos(model, davis_videos(davis), out, FAST, progress=False)
    assert [s.name for s in run.result.sequences] == ["alpha", "beta"]
    gt_root = davis / "Annotations" / "480p"
    for name, count in (("alpha", 6), ("beta", 5)):
        written = sorted(p.name for p in (out / "predictions" / name).iterdir())
        assert written == [f"{t:05d}.png" for t in range(count)]
        first = Image.open(out / "predictions" / name / "00000.png")
        assert first.mode == "P" and first.getpalette()[3:9] == [128, 0, 0, 0, 128, 0]  # DAVIS colours
        assert np.array_equal(np.array(first), read_label_map(gt_root / name / "00000.png"))  # given frame is exact
    # scoring in memory gives exactly what the folder scorer gives on the written PNGs
    again = score_folders(davis, out / "predictions")
    for ours, theirs in zip(run.result.sequences, again.sequences):
        assert ours.frames == theirs.frames and ours.jf_mean == pytest.approx(theirs.jf_mean, abs=1e-12)
    metrics = run.metrics()
    assert 0.0 <= metrics["J&F-Mean"] <= 1.0 and metrics["J&F-Mean"] == run.jf_mean
    assert run.fps > 0 and run.frame_count == 11 and metrics["frames"] == 11
    document = json.loads(run.scores_path.read_text())
    assert set(document["sequences"]) == {"alpha", "beta"} and document["timing"]["frames"] == 11
    assert [p.name for p in run.report_paths] == [
        "jf_per_sequence.png", "alpha_strip.png", "alpha_overlay.gif", "beta_strip.png", "beta_overlay.gif"
    ]
    assert all(p.is_file() and p.stat().st_size > 0 for p in run.report_paths)
    assert not (out / "ground_truth").exists()  # a DAVIS folder's own masks and frames feed the reports
    assert hidden_leftovers(out) == []


def test_sequence_filter_and_unknown_names(model, davis: Path, tmp_path: Path) -> None:
    run = evaluate_videos(model, davis_videos(davis, ["beta"]), tmp_path, FAST, progress=False, reports=False)
    assert [s.name for s in run.result.sequences] == ["beta"] and run.report_paths == ()
    assert sorted(p.name for p in (tmp_path / "predictions").iterdir()) == ["beta"]
    with pytest.raises(DataError, match="gamma"):
        list(davis_videos(davis, ["gamma"]))


def test_a_failing_sequence_leaves_no_partial_folder(model, davis: Path, tmp_path: Path) -> None:
    broken = tmp_path / "davis"
    write_davis(broken, {"alpha": 6})
    jpeg = broken / "JPEGImages" / "480p" / "alpha" / "00003.jpg"
    jpeg.write_bytes(jpeg.read_bytes()[:300])  # truncated mid-scan
    out = tmp_path / "eval"
    with pytest.raises(DataError, match="00003.jpg"):
        evaluate_videos(model, davis_videos(broken), out, FAST, progress=False)
    assert list((out / "predictions").iterdir()) == []


def test_objects_are_given_once_and_late_objects_are_not_scored(model, tmp_path: Path) -> None:
    images, masks = moving_squares(5, objects=2)
    masks = [np.where(m == 2, 0, m) if t < 2 else m for t, m in enumerate(masks)]  # object 2 appears at frame 2
    given = first_appearances(dict(enumerate(masks)))
    assert sorted(given) == [0, 2]
    assert set(np.unique(given[0])) == {0, 1} and set(np.unique(given[2])) == {0, 2}  # object 1 not given again
    video = EvalVideo("late", tuple(f"{t:05d}" for t in range(5)), images, given, dict(enumerate(masks)))
    run = evaluate_videos(model, [video], tmp_path, FAST, progress=False)
    assert [o.object_id for o in run.sequence("late").objects] == [1]  # DAVIS: objects of the first frame
    joined = read_label_map(tmp_path / "predictions" / "late" / "00002.png")
    assert np.all(joined[given[2] == 2] == 2)  # the late object's given mask is written as given
    assert (tmp_path / "ground_truth" / "late" / "00004.png").is_file()  # written for the reports
    assert (tmp_path / "images" / "late" / "00004.jpg").is_file()


def test_unscorable_videos_are_clear_errors(model, tmp_path: Path) -> None:
    images, masks = moving_squares(2)
    video = EvalVideo("short", ("a", "b"), images, {0: masks[0]}, dict(enumerate(masks)))
    with pytest.raises(DataError, match="short: 2 annotated frames"):
        evaluate_videos(model, [video], tmp_path, FAST, progress=False)


def test_ingested_dataset(model, tmp_path: Path) -> None:
    ingest_module = pytest.importorskip("components.data.ingest", reason="the data plane is not available")
    from components.data.config import IngestConfig
    from components.data.dataset import VideoDataset
    from components.evaluation.videos import dataset_videos

    uri = str(tmp_path / "dataset")
    spec = "videos=2,frames=5,size=32,seed=3"
    ingest_module.ingest("synthetic", spec, uri, IngestConfig(engine="threads"), progress=False)
    dataset = VideoDataset(uri)
    videos = list(dataset_videos(uri, [dataset.names[1]]))
    assert [v.name for v in videos] == [dataset.names[1]] and len(videos[0].ground_truth) == 5
    out = tmp_path / "eval"
    run = evaluate_videos(model, dataset_videos(uri), out, FAST, progress=False)
    assert [s.name for s in run.result.sequences] == dataset.names
    for name in dataset.names:
        record = dataset.read(name)
        first = read_label_map(out / "predictions" / name / f"{record.frame_names[0]}.png")
        given = first_appearances({i: record.mask(i) for i in record.annotated})[0]
        assert np.array_equal(first, given)
    assert 0.0 <= run.jf_mean <= 1.0 and run.fps > 0
    assert all(p.is_file() for p in run.report_paths) and len(run.report_paths) == 1 + 2 * len(dataset.names)
