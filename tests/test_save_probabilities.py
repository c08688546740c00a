"""`corrvos predict --save-probabilities DIR`: DIR/<frame stem>.npy, float16, (1 + objects, H, W) at the
frame's size, background first, then objects in ascending id; argmax agrees with the PNG written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from components.evaluation.masks import read_label_map
from pipelines.cli import main
from tests.evaluation.videos_util import (
    HEIGHT,
    WIDTH,
    hidden_leftovers,
    moving_squares,
    save_small_checkpoint,
    write_frames,
    write_mask,
)

FRAMES = 6


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_small_checkpoint(tmp_path_factory.mktemp("model") / "small.pt")


@pytest.fixture
def video(tmp_path: Path) -> list[np.ndarray]:
    """Object 2 given at frame 0 and object 1 only at frame 2: join order (2, 1) differs from id order."""
    images, masks = moving_squares(FRAMES, objects=2)
    write_frames(tmp_path / "clip", images)
    write_mask(tmp_path / "masks" / "00000.png", np.where(masks[0] == 1, 0, masks[0]))
    write_mask(tmp_path / "masks" / "00002.png", np.where(masks[2] == 2, 0, masks[2]))
    return masks


def _predict(capsys, checkpoint: Path, tmp_path: Path, *extra: str) -> tuple[int, str, str]:
    code = main(["predict", "--model", str(checkpoint), "--frames", str(tmp_path / "clip"), "--masks",
                 str(tmp_path / "masks"), "--out", str(tmp_path / "out"), "--no-progress", *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_probability_files_match_the_labels(checkpoint, video, tmp_path, capsys) -> None:
    probabilities = tmp_path / "probs"
    code, out, err = _predict(capsys, checkpoint, tmp_path, "--save-probabilities", str(probabilities),
                              "--set", "inference.preset=official")
    assert code == 0, err
    assert "preset=official" in out and "padding=zero" in out and "probability files" in out
    assert sorted(p.name for p in probabilities.iterdir()) == [f"{t:05d}.npy" for t in range(FRAMES)]
    assert hidden_leftovers(probabilities) == []
    masks = video
    for t in range(FRAMES):
        probs = np.load(probabilities / f"{t:05d}.npy")
        assert probs.dtype == np.float16 and probs.shape == (3, HEIGHT, WIDTH)
        assert np.abs(probs.astype(np.float32).sum(axis=0) - 1).max() < 5e-3
        label = read_label_map(tmp_path / "out" / "clip" / f"{t:05d}.png")
        # float16 rounding is monotone: the label's channel holds the maximum everywhere, and argmax agrees
        # wherever that maximum stays unique (a random-weight net leaves near-ties on some pixels)
        assert np.array_equal(np.take_along_axis(probs, label[None].astype(np.int64), axis=0)[0], probs.max(axis=0))
        top2 = np.sort(probs, axis=0)[-2:]
        distinct = top2[1] > top2[0]
        assert distinct.mean() > 0.5
        assert np.array_equal(probs.argmax(axis=0)[distinct], label[distinct])
    first = np.load(probabilities / "00000.npy")
    assert np.array_equal(first[2], (masks[0] == 2).astype(np.float16))  # channel 2 is object 2, given at frame 0
    assert not first[1].any()  # object 1 has not joined yet: its channel is 0
    joined = np.load(probabilities / "00002.npy")
    assert np.all(joined[1][masks[2] == 1] == 1)  # object 1's given mask is in channel 1 once it joins


def test_existing_probability_files_need_overwrite(checkpoint, video, tmp_path, capsys) -> None:
    probabilities = tmp_path / "probs"
    probabilities.mkdir()
    (probabilities / "00003.npy").write_bytes(b"old")
    code, _, err = _predict(capsys, checkpoint, tmp_path, "--save-probabilities", str(probabilities))
    assert code != 0 and "00003.npy already exists" in err and "--overwrite" in err
    assert not (tmp_path / "out" / "clip").exists()  # checked before anything was written
    code, _, err = _predict(capsys, checkpoint, tmp_path, "--save-probabilities", str(probabilities), "--overwrite")
    assert code == 0, err
    assert np.load(probabilities / "00003.npy").shape == (3, HEIGHT, WIDTH)
