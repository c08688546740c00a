"""corrvos's DAVIS scorer against numbers the official toolkit produced on committed fixtures.

tests/evaluation/fixtures/davis_toolkit/ holds generated ground truth and predictions in DAVIS 2017
layout (make_fixture.py draws them) and toolkit_results.json: what davisvideochallenge/
davis2017-evaluation (the commit recorded in the file) computed on them, run outside this
repository (README.md there says how). Nothing here needs the toolkit or external data, so these
tests run everywhere.

Per-frame J and F, every per-object statistic and the global line are computed by the same float
operations in the same order as the toolkit, so they agree to the last bit; TOL leaves room only for
a numpy whose summation rounds the last bit differently.
"""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest

from components.errors import DataError
from components.evaluation import EvaluationResult, boundary_tolerance, read_label_map, score_folders
from components.evaluation.masks import list_frames
from pipelines.cli import main

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "davis_toolkit"
GT_ROOT = FIXTURE / "Annotations" / "480p"
REFERENCE = json.loads((FIXTURE / "toolkit_results.json").read_text())
TOL = 1e-12
STATISTICS = ("J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay")
GLOBAL = ("J&F-Mean",) + STATISTICS


def by_object(result: EvaluationResult) -> dict[str, dict[str, object]]:
    """Our figures keyed as the toolkit keys objects: '<sequence>_<id>'."""
    table = {}
    for seq in result.sequences:
        for obj in seq.objects:
            table[f"{seq.name}_{obj.object_id}"] = {
                "J-Mean": obj.j_stats.mean, "J-Recall": obj.j_stats.recall, "J-Decay": obj.j_stats.decay,
                "F-Mean": obj.f_stats.mean, "F-Recall": obj.f_stats.recall, "F-Decay": obj.f_stats.decay,
                "J-per-frame": obj.j.tolist(), "F-per-frame": obj.f.tolist(),
            }
    return table


def assert_matches(ours: dict[str, dict[str, object]], reference: dict[str, dict[str, object]]) -> None:
    assert list(ours) == list(reference)
    for name, figures in reference.items():
        for key in ("J-per-frame", "F-per-frame"):
            np.testing.assert_allclose(ours[name][key], figures[key], rtol=0, atol=TOL, err_msg=f"{name} {key}")
        for key in STATISTICS:
            assert ours[name][key] == pytest.approx(figures[key], rel=0, abs=TOL), f"{name} {key}"


@pytest.fixture(scope="module")
def result() -> EvaluationResult:
    return score_folders(FIXTURE, FIXTURE / "predictions")


def test_the_committed_fixture_is_what_make_fixture_draws() -> None:
    spec = importlib.util.spec_from_file_location("make_fixture", FIXTURE / "make_fixture.py")
    make_fixture = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_fixture)
    drawn = make_fixture.generate()
    assert sorted(drawn) == sorted(p.name for p in GT_ROOT.iterdir()) == list(REFERENCE["frames"])
    assert (FIXTURE / "ImageSets" / "2017" / "val.txt").read_text().split() == sorted(drawn)
    folders = [(name, GT_ROOT / name, gt) for name, (gt, _) in drawn.items()]
    folders += [(name, FIXTURE / "predictions" / name, pred) for name, (_, pred) in drawn.items()]
    folders.append(("twins", FIXTURE / "predictions_extra_id" / "twins",
                    make_fixture.extra_id_prediction(drawn["twins"][1])))
    for name, folder, frames in folders:
        assert list_frames(folder) == [f"{t:05d}" for t in range(len(frames))], folder
        for t, labels in enumerate(frames):
            assert np.array_equal(read_label_map(folder / f"{t:05d}.png"), labels), f"{folder}/{t:05d}.png"


def test_the_fixture_exercises_what_it_claims() -> None:
    gt = {seq.name: [read_label_map(seq / f"{f}.png") for f in list_frames(seq)] for seq in sorted(GT_ROOT.iterdir())}
    pred = {name: [read_label_map(FIXTURE / "predictions" / name / f"{t:05d}.png") for t in range(len(frames))]
            for name, frames in gt.items()}
    assert {boundary_tolerance(frames[0].shape) for frames in gt.values()} == {1, 2, 3}
    assert any(np.any(labels == 255) for labels in gt["void"][1:-1])  # void in scored frames
    assert all(not np.any(labels) for labels in pred["blank"][1:-1])  # an all-empty prediction
    assert not np.any(pred["twins"][3])  # one empty predicted frame among good ones
    assert set(np.unique(gt["late"][0])) == {0, 1, 3} and 4 in gt["late"][-1]  # id gap; a late, unscored object
    assert pred["blank"][-1].max() == 9 and pred["twins"][-1].max() == 5  # spurious ids where nothing is read


def test_frames_and_objects_are_the_toolkits(result: EvaluationResult) -> None:
    assert {seq.name: list(seq.frames) for seq in result.sequences} == REFERENCE["frames"]
    assert list(by_object(result)) == list(REFERENCE["objects"])


def test_per_frame_and_per_object_figures_match_the_toolkit(result: EvaluationResult) -> None:
    assert_matches(by_object(result), REFERENCE["objects"])


def test_global_line_matches_the_toolkit(result: EvaluationResult) -> None:
    ours = result.global_metrics()
    for key in GLOBAL:
        assert ours[key] == pytest.approx(REFERENCE["global"][key], rel=0, abs=TOL), key
    # the fixture is no easy case: far from perfect, and every kind of figure moves
    assert 0.5 < ours["J&F-Mean"] < 0.8 and ours["F-Decay"] > 0.01


def test_cli_json_matches_the_toolkit(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "scores.json"
    code = main(["score", str(FIXTURE), str(FIXTURE / "predictions"), "--json", str(path), "--no-progress"])
    assert code == 0, capsys.readouterr().err
    document = json.loads(path.read_text())
    for key in GLOBAL:
        assert document["global"][key] == pytest.approx(REFERENCE["global"][key], rel=0, abs=TOL), key
    ours = {f"{name}_{obj['id']}": obj for name, seq in document["sequences"].items() for obj in seq["objects"]}
    assert_matches(ours, REFERENCE["objects"])
    printed = capsys.readouterr().out
    assert f"{REFERENCE['global']['J&F-Mean']:.3f}" in printed


def test_ignore_void_matches_the_toolkit_metrics_given_void_masks() -> None:
    reference = REFERENCE["void_masks_given"]
    result = score_folders(FIXTURE, FIXTURE / "predictions", ignore_void=True)
    assert_matches(by_object(result), reference["objects"])
    for key in GLOBAL:
        assert result.global_metrics()[key] == pytest.approx(reference["global"][key], rel=0, abs=TOL), key
    # the void sequence is where the two modes part (and nowhere else: no other sequence has void)
    for name, figures in reference["objects"].items():
        default = REFERENCE["objects"][name]
        assert (figures["J-per-frame"] != default["J-per-frame"]) == name.startswith("void_"), name
    assert not math.isclose(reference["objects"]["void_1"]["F-Mean"], REFERENCE["objects"]["void_1"]["F-Mean"])


def test_an_object_id_above_the_ground_truths_count_is_refused_as_by_the_toolkit(capsys) -> None:
    assert REFERENCE["extra_id"]["toolkit"].startswith("sys.exit")  # the toolkit stops the evaluation
    assert "index higher than the number of objects" in REFERENCE["extra_id"]["message"]
    with pytest.raises(DataError, match=r"twins/00002\.png: object id 3 but the ground truth has 2"):
        score_folders(FIXTURE, FIXTURE / "predictions_extra_id", sequences=["twins"])
    code = main(["score", str(FIXTURE), str(FIXTURE / "predictions_extra_id"), "--sequences", "twins", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "00002.png" in err
