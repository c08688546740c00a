"""evaluate_videos: predictions in DAVIS layout, in-memory scores equal to the folder scorer's, reports,
atomic sequences, and both video sources (a DAVIS folder, an ingested dataset)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from components.config import InferenceConfig
from components.data.config import IngestConfig
from components.data.dataset import VideoDataset
from components.data.ingest import ingest
from components.errors import DataError
from components.evaluation import score_folders
from components.evaluation.evaluate import evaluate_videos
from components.evaluation.masks import read_label_map
from components.evaluation.videos import EvalVideo, dataset_videos, davis_videos, first_appearances
from tests.evaluation.videos_util import hidden_leftovers, moving_squares, small_model, write_davis

FAST = InferenceConfig(memory_every=2)
GLOBAL = ("J&F-Mean", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay")


def j_mean_by_hand(gt: dict[str, list[np.ndarray]], pred: dict[str, list[np.ndarray]]) -> float:
    """Global J-Mean with numpy alone: IoU of each object of the first frame on each scored frame (first
    and last left out; both masks empty is 1), averaged over frames, then over all objects of all sequences."""
    per_object = []
    for name, frames in gt.items():
        for k in range(1, int(frames[0].max()) + 1):
            values = []
            for g, p in zip(frames[1:-1], pred[name][1:-1]):
                union = np.count_nonzero((g == k) | (p == k))
                values.append(1.0 if union == 0 else np.count_nonzero((g == k) & (p == k)) / union)
            per_object.append(np.mean(values))
    return float(np.mean(per_object))


def read_folder(folder: Path, frames: list[str]) -> list[np.ndarray]:
    return [read_label_map(folder / f"{frame}.png") for frame in frames]


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
    # the global line is the written predictions' own: J recomputed by hand, the rest re-scored from the PNGs
    names = {name: [f"{t:05d}" for t in range(count)] for name, count in (("alpha", 6), ("beta", 5))}
    gt = {name: read_folder(gt_root / name, frames) for name, frames in names.items()}
    pred = {name: read_folder(out / "predictions" / name, frames) for name, frames in names.items()}
    assert metrics["J-Mean"] == pytest.approx(j_mean_by_hand(gt, pred), rel=0, abs=1e-12)
    assert {k: metrics[k] for k in GLOBAL} == pytest.approx(again.global_metrics(), rel=0, abs=1e-12)
    assert metrics["J&F-Mean"] == run.jf_mean == (metrics["J-Mean"] + metrics["F-Mean"]) / 2
    assert run.fps > 0 and run.frame_count == 11 and metrics["frames"] == 11
    document = json.loads(run.scores_path.read_text())
    assert set(document["sequences"]) == {"alpha", "beta"} and document["timing"]["frames"] == 11
    assert document["global"] == {k: metrics[k] for k in GLOBAL}  # scores.json holds the very numbers
    assert document["timing"]["fps"] == pytest.approx(run.fps)
    assert [p.name for p in run.report_paths] == [
        "jf_per_sequence.png", "alpha_strip.png", "alpha_overlay.gif", "beta_strip.png", "beta_overlay.gif"
    ]
    assert all(p.is_file() and p.stat().st_size > 0 for p in run.report_paths)
    assert not (out / "ground_truth").exists()  # a DAVIS folder's own masks and frames feed the reports
    assert hidden_leftovers(out) == []


def test_the_models_own_output_as_ground_truth_scores_exactly_one(model, davis: Path, tmp_path: Path) -> None:
    first = evaluate_videos(model, davis_videos(davis, ["beta"]), tmp_path / "first", FAST, progress=False,
                            reports=False)
    (video,) = davis_videos(davis, ["beta"])
    folder = first.predictions_dir / "beta"
    written = {t: read_label_map(folder / f"{name}.png") for t, name in enumerate(video.frame_names)}
    assert np.array_equal(written[0], video.ground_truth[0])  # the given mask, so the same run again
    copied = EvalVideo("beta", video.frame_names, video.frames, video.annotations, written)
    run = evaluate_videos(model, [copied], tmp_path / "second", FAST, progress=False, reports=False)
    (score,) = run.result.sequences
    assert [o.object_id for o in score.objects] == [1, 2] and score.frames == ("00001", "00002", "00003")
    for obj in score.objects:
        assert obj.j.tolist() == [1.0, 1.0, 1.0] and obj.f.tolist() == [1.0, 1.0, 1.0]
    assert run.metrics()["J&F-Mean"] == 1.0 and run.metrics()["J-Decay"] == 0.0 and run.metrics()["F-Recall"] == 1.0


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
    uri = str(tmp_path / "dataset")
    spec = "videos=2,frames=5,size=32,seed=3"
    ingest("synthetic", spec, uri, IngestConfig(engine="threads"), progress=False)
    dataset = VideoDataset(uri)
    videos = list(dataset_videos(uri, [dataset.names[1]]))
    assert [v.name for v in videos] == [dataset.names[1]] and len(videos[0].ground_truth) == 5
    out = tmp_path / "eval"
    run = evaluate_videos(model, dataset_videos(uri), out, FAST, progress=False)
    assert [s.name for s in run.result.sequences] == dataset.names
    gt, pred = {}, {}
    for name in dataset.names:
        record = dataset.read(name)
        first = read_label_map(out / "predictions" / name / f"{record.frame_names[0]}.png")
        given = first_appearances({i: record.mask(i) for i in record.annotated})[0]
        assert np.array_equal(first, given)
        gt[name] = [record.mask(i) for i in sorted(record.annotated)]
        pred[name] = read_folder(out / "predictions" / name, [record.frame_names[i] for i in sorted(record.annotated)])
    assert run.result.global_metrics()["J-Mean"] == pytest.approx(j_mean_by_hand(gt, pred), rel=0, abs=1e-12)
    # `corrvos score <out>/ground_truth <out>/predictions` re-scores the written files to the same numbers
    again = score_folders(out / "ground_truth", out / "predictions").global_metrics()
    assert run.result.global_metrics() == pytest.approx(again, rel=0, abs=1e-12)
    assert json.loads(run.scores_path.read_text())["global"]["J&F-Mean"] == run.jf_mean and run.fps > 0
    assert all(p.is_file() for p in run.report_paths) and len(run.report_paths) == 1 + 2 * len(dataset.names)
