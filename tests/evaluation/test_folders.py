"""Scoring folders in DAVIS layout, every file error, and `corrvos score` end to end."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from components.errors import DataError
from components.evaluation import score_folders, score_sequence
from pipelines.cli import main
from tests.evaluation.masks_util import square, write_binary, write_indexed, write_sequence

SHAPE = (24, 32)


def _cars(t: int) -> np.ndarray:
    return square(SHAPE, 2, 2 + t, 6, 1) | square(SHAPE, 12, 20 - t, 6, 2)


def _dog(t: int) -> np.ndarray:
    return square(SHAPE, 8, 8 + t, 8)


@pytest.fixture()
def davis(tmp_path: Path) -> tuple[Path, Path]:
    """A DAVIS root (indexed 2-object 'cars', grayscale 'dog', JPEG frames) and predictions for it."""
    root, preds = tmp_path / "DAVIS", tmp_path / "preds"
    write_sequence(root / "Annotations" / "480p" / "cars", [_cars(t) for t in range(6)])
    write_sequence(root / "Annotations" / "480p" / "dog", [_dog(t) for t in range(5)], indexed=False)
    for seq, count in (("cars", 6), ("dog", 5)):
        (root / "JPEGImages" / "480p" / seq).mkdir(parents=True)
        for t in range(count):
            frame = Image.new("RGB", (SHAPE[1], SHAPE[0]), (30 * t, 90, 60))
            frame.save(root / "JPEGImages" / "480p" / seq / f"{t:05d}.jpg")
    cars_pred = [_cars(t) for t in range(6)]
    cars_pred[2] = np.where(cars_pred[2] == 2, 0, cars_pred[2]).astype(np.uint8)  # object 2 missed once
    write_sequence(preds / "cars", cars_pred)
    (preds / "cars" / "00000.png").unlink()  # first and last predictions are optional
    (preds / "cars" / "00005.png").unlink()
    dog_pred = [_dog(t) for t in range(5)]
    dog_pred[3] = np.roll(dog_pred[3], 2, axis=1)
    write_sequence(preds / "dog", dog_pred, indexed=True)  # indexed prediction for grayscale truth
    return root, preds


def test_folders_match_the_in_memory_protocol(davis: tuple[Path, Path]) -> None:
    root, preds = davis
    result = score_folders(root, preds)
    assert [s.name for s in result.sequences] == ["cars", "dog"]
    cars, dog = result.sequences
    assert cars.frames == ("00001", "00002", "00003", "00004")
    assert cars.objects[0].j.tolist() == [1.0] * 4
    assert cars.objects[1].j.tolist() == [1.0, 0.0, 1.0, 1.0]
    assert dog.objects[0].j.tolist() == [1.0, 1.0, pytest.approx(48 / 80)]  # 8x8 shifted 2: 48 / 80
    memory = score_sequence([_dog(t) for t in range(5)], [_dog(0), _dog(1), _dog(2), np.roll(_dog(3), 2, 1), _dog(4)])
    assert np.allclose(memory.objects[0].f, dog.objects[0].f)
    metrics = result.global_metrics()
    assert metrics["J-Mean"] == pytest.approx((1 + 0.75 + (2 + 0.6) / 3) / 3)


def test_sequence_selection_and_parallel_workers_agree(davis: tuple[Path, Path]) -> None:
    root, preds = davis
    serial = score_folders(root, preds)
    parallel = score_folders(root, preds, workers=2)
    assert [s.jf_mean for s in serial.sequences] == [s.jf_mean for s in parallel.sequences]
    only = score_folders(root, preds, sequences=["dog"])
    assert [s.name for s in only.sequences] == ["dog"]


def test_missing_frame_names_the_file(davis: tuple[Path, Path]) -> None:
    root, preds = davis
    (preds / "dog" / "00002.png").unlink()
    with pytest.raises(DataError, match=r"missing predicted frame .*dog/00002\.png"):
        score_folders(root, preds)


def test_size_mismatch_names_the_file(davis: tuple[Path, Path]) -> None:
    root, preds = davis
    write_indexed(preds / "cars" / "00003.png", np.zeros((12, 16), np.uint8))
    with pytest.raises(DataError, match=r"cars/00003\.png: size 16x12 differs from the ground truth's 32x24"):
        score_folders(root, preds)


def test_more_objects_than_ground_truth_names_the_file(davis: tuple[Path, Path]) -> None:
    root, preds = davis
    write_indexed(preds / "dog" / "00001.png", _dog(1) * 2)
    with pytest.raises(DataError, match=r"dog/00001\.png: object id 2 but the ground truth has 1 object"):
        score_folders(root, preds)
    write_binary(preds / "dog" / "00001.png", _dog(1))  # a grayscale 0/255 prediction is one object
    write_indexed(preds / "cars" / "00002.png", np.where(_cars(2) > 0, 255, 0))
    with pytest.raises(DataError, match=r"cars/00002\.png: object id 255"):
        score_folders(root, preds)


def test_folder_level_errors(davis: tuple[Path, Path], tmp_path: Path) -> None:
    root, preds = davis
    with pytest.raises(DataError, match="prediction folder .* does not exist"):
        score_folders(root, tmp_path / "absent")
    with pytest.raises(DataError, match="sequence cat is not in the ground truth"):
        score_folders(root, preds, sequences=["cat"])
    shutil.rmtree(preds / "dog")
    with pytest.raises(DataError, match="no predictions for sequence dog"):
        score_folders(root, preds)
    write_sequence(preds / "dog", [_dog(t) for t in range(5)])
    for name in ("00002.png", "00003.png", "00004.png"):
        (root / "Annotations" / "480p" / "dog" / name).unlink()
    with pytest.raises(DataError, match="dog: 2 annotated frames"):
        score_folders(root, preds)
    write_sequence(tmp_path / "blank" / "void", [np.zeros(SHAPE, np.uint8)] * 3)
    write_sequence(tmp_path / "blank_pred" / "void", [np.zeros(SHAPE, np.uint8)] * 3)
    with pytest.raises(DataError, match=r"void/00000\.png: the first ground-truth frame holds no object"):
        score_folders(tmp_path / "blank", tmp_path / "blank_pred")


def test_cli_prints_table_writes_json_and_reports(davis: tuple[Path, Path], tmp_path: Path, capsys) -> None:
    root, preds = davis
    out_json, report = tmp_path / "out" / "scores.json", tmp_path / "report"
    argv = ["score", str(root), str(preds), "--json", str(out_json), "--report-dir", str(report), "--no-progress"]
    code = main(argv)
    printed = capsys.readouterr().out
    assert code == 0
    assert "cars" in printed and "dog" in printed and "global (2 sequences, 3 objects): J&F-Mean" in printed
    document = json.loads(out_json.read_text())
    assert set(document["global"]) == {"J&F-Mean", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay"}
    cars = document["sequences"]["cars"]
    assert cars["J-Mean"] == pytest.approx(0.875) and [o["id"] for o in cars["objects"]] == [1, 2]
    assert cars["objects"][1]["J-per-frame"] == [1.0, 0.0, 1.0, 1.0]
    assert {"J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay"} <= set(cars["objects"][0])
    assert [p.name for p in out_json.parent.iterdir()] == ["scores.json"]  # no temporary left behind
    assert sorted(p.name for p in report.iterdir()) == [  # the frames are on disk: real footage gets an MP4
        "cars_overlay.gif", "cars_overlay.mp4", "cars_strip.png", "dog_overlay.gif", "dog_overlay.mp4", "dog_strip.png",
        "jf_per_sequence.png",
    ]


def test_cli_error_is_one_line_and_exit_1(davis: tuple[Path, Path], capsys) -> None:
    root, preds = davis
    (preds / "cars" / "00001.png").unlink()
    code = main(["score", str(root), str(preds), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1 and err.startswith("corrvos score: error: missing predicted frame")
