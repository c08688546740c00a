"""The overlay renderer, pixel by pixel: solid contours in the palette colour, tiny objects kept, worst frames, MP4."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from components.evaluation import score_folders
from components.evaluation.overlays import (
    FILL_ALPHA,
    draw_masks,
    frame_scores,
    object_colour,
    overlay_panel,
    worst_frames,
    write_overlay_mp4,
    write_overlay_strip,
)
from components.training.batch import random_clip_batch
from components.training.preview import prediction_grid
from tests.evaluation.masks_util import square, write_sequence

GREY = 100


def _grey(height: int, width: int) -> np.ndarray:
    return np.full((height, width, 3), GREY, dtype=np.uint8)


def _coloured(picture: np.ndarray, object_id: int) -> np.ndarray:
    """Boolean map of the pixels that carry exactly the object's palette colour."""
    return (picture == np.array(object_colour(object_id), dtype=np.uint8)).all(axis=-1)


def test_contour_is_two_solid_pixels_in_the_palette_colour_over_a_translucent_fill() -> None:
    labels = square((20, 20), 5, 5, 10, value=2)  # rows and columns 5..14
    out = draw_masks(_grey(20, 20), labels)
    green = _coloured(out, 2)
    assert green[4, 10] and green[5, 10]  # one pixel outside the edge, one inside: solid colour
    assert green[10, 4] and green[10, 5] and green[14, 10] and green[15, 10]
    assert not green[3, 10] and not green[6, 10]  # exactly two pixels wide
    fill = np.round((1 - FILL_ALPHA) * GREY + FILL_ALPHA * np.array(object_colour(2)))
    assert out[10, 10].tolist() == fill.tolist()  # inside: the frame still shows through
    assert out[0, 0].tolist() == [GREY] * 3  # background untouched


def test_each_object_keeps_its_own_colour_and_void_is_greyed() -> None:
    labels = square((24, 24), 2, 2, 6, value=1) | square((24, 24), 12, 12, 8, value=3)
    labels[0, 23] = 255
    out = draw_masks(_grey(24, 24), labels)
    assert _coloured(out, 1)[2, 4] and _coloured(out, 3)[12, 15]
    assert not _coloured(out, 1)[12, 15] and not _coloured(out, 3)[2, 4]
    assert out[0, 23].tolist() != [GREY] * 3 and out[0, 23, 0] > GREY  # void: lighter grey


def test_a_one_pixel_object_stays_visible_at_full_size_and_in_a_shrunk_panel() -> None:
    labels = np.zeros((400, 600), dtype=np.uint8)
    labels[201, 333] = 4
    assert _coloured(draw_masks(_grey(400, 600), labels), 4).sum() == 9  # a 3x3 block, not one lost pixel
    naive = cv2.resize(labels, (150, 100), interpolation=cv2.INTER_NEAREST)
    assert not (naive == 4).any()  # plain nearest-neighbour shrinking would drop it
    panel = overlay_panel(_grey(400, 600), labels, width=150)
    assert panel.shape == (100, 150, 3)
    found = np.argwhere(_coloured(panel, 4))
    assert len(found) == 9 and abs(found[:, 0].mean() - 201 / 4) <= 1 and abs(found[:, 1].mean() - 333 / 4) <= 1


def _sequence(tmp_path: Path, bad: set[int], count: int = 8) -> tuple[Path, Path]:
    """Ground truth of one moving square; the prediction matches except on frames `bad` (shifted away)."""
    gt, pred = tmp_path / "gt" / "seq", tmp_path / "pred" / "seq"
    frames = [square((32, 48), 8, 4 + 2 * t, 12, value=1) for t in range(count)]
    write_sequence(gt, frames)
    write_sequence(pred, [np.roll(f, 20 if t in bad else 0, axis=1) for t, f in enumerate(frames)])
    return gt, pred


def test_strips_show_the_worst_frames_in_frame_order(tmp_path: Path) -> None:
    gt, pred = _sequence(tmp_path, bad={2, 5})
    score = score_folders(gt.parent, pred.parent).sequences[0]
    scores = frame_scores(score)
    assert scores["00002"][0] < 0.1 and scores["00003"] == (1.0, 1.0)
    assert worst_frames(score, 2) == ["00002", "00005"]
    path = write_overlay_strip(score, gt, pred, None, tmp_path / "strip.png", num_frames=2, panel_width=48)
    strip = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    assert strip.shape[:2] == (2 * (32 + 14), 96)
    first_row = strip[14:46]  # frame 00002: the prediction (left) sits 20 px right of the ground truth (right)
    left, right = np.argwhere(_coloured(first_row[:, :48], 1)), np.argwhere(_coloured(first_row[:, 48:], 1))
    assert left[:, 1].min() - right[:, 1].min() == 20


def test_mp4_holds_every_predicted_frame(tmp_path: Path) -> None:
    gt, pred = _sequence(tmp_path, bad={3})
    score = score_folders(gt.parent, pred.parent).sequences[0]
    (pred / "00007.png").unlink()
    path = write_overlay_mp4(gt, pred, None, tmp_path / "out" / "seq_overlay.mp4", panel_width=48, score=score)
    video = cv2.VideoCapture(str(path))
    assert video.isOpened() and int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == 7
    ok, frame = video.read()
    assert ok and frame.shape == (32 + 14, 96, 3)
    video.release()
    assert sorted(p.name for p in path.parent.iterdir()) == ["seq_overlay.mp4"]  # no temporaries left


def test_training_previews_use_the_same_renderer() -> None:
    batch = random_clip_batch(2, 3, 32, 2)
    logits = torch.randn(2, 2, 3, 32, 32)
    grid = prediction_grid(batch, logits, max_clips=1)
    frame = (batch.frames[0, 0].clamp(0, 1) * 255).byte().permute(1, 2, 0).numpy()
    assert np.array_equal(grid[:, :32], draw_masks(frame, batch.labels()[0, 0].numpy()))
