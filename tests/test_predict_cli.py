"""`corrvos predict`: DAVIS-layout output from a random `small` checkpoint, masks folders, overrides,
and every bad input as one line naming the file, with nothing written."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

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

FRAMES = 7


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_small_checkpoint(tmp_path_factory.mktemp("model") / "small.pt")


@pytest.fixture
def video(tmp_path: Path) -> tuple[Path, list[np.ndarray]]:
    """tmp/clip/<frame>.jpg (2 objects) and tmp/masks/ with frame 0's mask, object 2 only from frame 3."""
    images, masks = moving_squares(FRAMES, objects=2)
    write_frames(tmp_path / "clip", images)
    write_mask(tmp_path / "masks" / "00000.png", np.where(masks[0] == 2, 0, masks[0]))
    write_mask(tmp_path / "masks" / "00003.png", masks[3])  # objects 1 and 2; only 2 is new
    return tmp_path / "clip", masks


def _predict(capsys: pytest.CaptureFixture, model: Path, frames: Path, masks: Path, out: Path, *extra: str):
    code = main(["predict", "--model", str(model), "--frames", str(frames), "--masks", str(masks),
                 "--out", str(out), "--no-progress", "--set", "inference.memory_every=2", *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_first_frame_mask_to_davis_layout_and_overlay(checkpoint, video, tmp_path, capsys) -> None:
    frames, masks = video
    out = tmp_path / "out"
    code, stdout, err = _predict(capsys, checkpoint, frames, tmp_path / "masks" / "00000.png", out, "--overlay")
    assert code == 0, err
    pngs = sorted((out / "clip").iterdir())
    assert [p.name for p in pngs] == [f"{t:05d}.png" for t in range(FRAMES)]
    first = Image.open(pngs[0])
    assert first.mode == "P" and first.size == (WIDTH, HEIGHT)
    assert first.getpalette()[:9] == [0, 0, 0, 128, 0, 0, 0, 128, 0]  # the DAVIS palette
    assert np.array_equal(np.array(first), np.where(masks[0] == 2, 0, masks[0]))
    assert all(set(np.unique(read_label_map(p))) <= {0, 1} for p in pngs)  # only the given object
    with Image.open(out / "clip_overlay.gif") as gif:
        assert gif.n_frames == FRAMES
    video = cv2.VideoCapture(str(out / "clip_overlay.mp4"))  # the same overlays, every frame, as a video
    assert video.isOpened() and int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == FRAMES
    video.release()
    assert "wrote 7 frames" in stdout and "frames/s" in stdout and "clip_overlay.mp4" in stdout
    assert hidden_leftovers(out) == []


def test_masks_folder_adds_late_objects_and_overrides_apply(checkpoint, video, tmp_path, capsys) -> None:
    frames, masks = video
    out = tmp_path / "out"
    code, stdout, err = _predict(capsys, checkpoint, frames, tmp_path / "masks", out, "--set", "inference.top_k=4")
    assert code == 0, err
    labels = [read_label_map(out / "clip" / f"{t:05d}.png") for t in range(FRAMES)]
    assert all(2 not in lab for lab in labels[:3])
    assert np.all(labels[3][masks[3] == 2] == 2)  # object 2 joins with its given mask
    assert "objects 1, 2" in stdout
    # a second run needs --overwrite, and then replaces the sequence whole
    code, _, err = _predict(capsys, checkpoint, frames, tmp_path / "masks", out)
    assert code == 1 and "--overwrite" in err
    code, _, err = _predict(capsys, checkpoint, frames, tmp_path / "masks" / "00000.png", out, "--overwrite")
    assert code == 0, err
    assert all(2 not in read_label_map(p) for p in (out / "clip").iterdir()) and hidden_leftovers(out) == []


def _garbage_model(tmp_path: Path) -> Path:
    path = tmp_path / "garbage.pt"
    path.write_bytes(b"certainly not a checkpoint" * 10)
    return path


def _empty_frames(tmp_path: Path) -> Path:
    (tmp_path / "empty").mkdir()
    return tmp_path / "empty"


def _wrong_size_mask(tmp_path: Path) -> Path:
    return write_mask(tmp_path / "big.png", np.ones((HEIGHT + 2, WIDTH), np.uint8))


def _truncated_frame(tmp_path: Path) -> Path:
    jpeg = tmp_path / "clip" / "00004.jpg"
    jpeg.write_bytes(jpeg.read_bytes()[:400])  # header intact, scan cut short: fails mid-propagation
    return jpeg


def _not_an_image(tmp_path: Path) -> Path:
    jpeg = tmp_path / "clip" / "00002.jpg"
    jpeg.write_bytes(b"\x00" * 64)
    return jpeg


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("missing model", "nowhere.pt"),
        ("garbage model", "garbage.pt"),
        ("no frames", "empty"),
        ("mask size", "big.png"),
        ("truncated frame", "00004.jpg"),
        ("not an image", "00002.jpg"),
        ("unknown setting", "inference.topk"),
        ("other section", "predict only takes inference"),
        ("mask without frame", "00099.png"),
        ("empty mask", "no object"),
    ],
)
def test_bad_input_is_one_line_naming_the_file_and_writes_nothing(checkpoint, video, tmp_path, capsys, case, expected):
    frames, _ = video
    model, masks, extra = checkpoint, tmp_path / "masks" / "00000.png", []
    if case == "missing model":
        model = tmp_path / "nowhere.pt"
    elif case == "garbage model":
        model = _garbage_model(tmp_path)
    elif case == "no frames":
        frames = _empty_frames(tmp_path)
    elif case == "mask size":
        masks = _wrong_size_mask(tmp_path)
    elif case == "truncated frame":
        _truncated_frame(tmp_path)
    elif case == "not an image":
        _not_an_image(tmp_path)
    elif case == "unknown setting":
        extra = ["--set", "inference.topk=3"]
    elif case == "other section":
        extra = ["--set", "model.value_dim=3"]
    elif case == "mask without frame":
        write_mask(tmp_path / "masks" / "00099.png", np.ones((HEIGHT, WIDTH), np.uint8))
        masks = tmp_path / "masks"
    elif case == "empty mask":
        masks = write_mask(tmp_path / "zero.png", np.zeros((HEIGHT, WIDTH), np.uint8))
    out = tmp_path / "out"
    code, stdout, err = _predict(capsys, model, frames, masks, out, *extra)
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("corrvos predict: error:") and expected in lines[0], err
    assert not out.exists() or list(out.iterdir()) == []


def test_a_checkpoint_that_carries_settings_is_served_with_them_and_set_overrides_one_key(
        checkpoint, video, tmp_path, capsys) -> None:
    """A registered checkpoint holds the settings its J&F was measured with; predict uses them, `--set` one key."""
    import dataclasses
    import shutil

    from components.config import InferenceConfig
    from components.evaluation.videos import image_frames, list_image_files
    from components.inference import VideoPropagator
    from components.model.checkpoint import ScoredSettings, load_inference_checkpoint, stamp_checkpoint

    frames_dir, masks = video
    stored = InferenceConfig(memory_every=1, include_last=True, min_short_side=64)
    stamped = tmp_path / "stamped.pt"
    shutil.copy(checkpoint, stamped)
    stamp_checkpoint(str(stamped), ScoredSettings(inference=stored))
    model, _ = load_inference_checkpoint(str(stamped))
    frames = list(image_frames(list_image_files(frames_dir)))

    def expected(config: InferenceConfig) -> list[np.ndarray]:
        return VideoPropagator(model, config, "cpu").propagate(frames, {0: np.where(masks[0] == 2, 0, masks[0])}).labels

    def predict(out: str, *extra: str) -> tuple[list[np.ndarray], str]:
        code = main(["predict", "--model", str(stamped), "--frames", str(frames_dir), "--masks",
                     str(tmp_path / "masks" / "00000.png"), "--out", str(tmp_path / out), "--no-progress", *extra])
        captured = capsys.readouterr()
        assert code == 0, captured.err
        return [read_label_map(p) for p in sorted((tmp_path / out / "clip").iterdir())], captured.out

    labels, stdout = predict("stored")
    assert all(np.array_equal(a, b) for a, b in zip(labels, expected(stored), strict=True))
    assert f"inference settings: stored in {stamped} (memory_every=1, include_last=True, min_short_side=64)" in stdout
    labels, stdout = predict("one-key", "--set", "inference.memory_every=3")
    one_key = dataclasses.replace(stored, memory_every=3)  # include_last and min_short_side stay the stored ones
    assert all(np.array_equal(a, b) for a, b in zip(labels, expected(one_key), strict=True))
    assert ("with --set inference.memory_every=3 (memory_every=3, include_last=True, min_short_side=64)") in stdout
