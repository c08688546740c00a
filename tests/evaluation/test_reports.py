"""Report pictures: what they contain, where they go, and what the functions return."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from components.evaluation import score_folders
from components.evaluation.reports import (
    CAPTION_HEIGHT,
    default_report_dir,
    object_colour,
    plot_jf_per_sequence,
    write_overlay_gif,
    write_overlay_strip,
    write_reports,
)
from tests.evaluation.masks_util import square, write_sequence

SHAPE = (30, 40)


@pytest.fixture()
def folders(tmp_path: Path) -> tuple[Path, Path]:
    """Ground truth and predictions, no frames on disk: overlays fall back to a grey canvas."""
    gt, pred = tmp_path / "gt", tmp_path / "run" / "pred"
    for seq, count in (("a", 8), ("b", 5)):
        frames = [square(SHAPE, 5, 5 + t, 10, 1) | square(SHAPE, 18, 20, 6, 2) for t in range(count)]
        write_sequence(gt / seq, frames)
        write_sequence(pred / seq, [np.roll(f, 1, axis=0) for f in frames])
    return gt, pred


def test_palette_matches_davis() -> None:
    assert [object_colour(i) for i in range(5)] == [(0, 0, 0), (128, 0, 0), (0, 128, 0), (128, 128, 0), (0, 0, 128)]


def test_bar_chart_is_a_png(folders: tuple[Path, Path], tmp_path: Path) -> None:
    result = score_folders(*folders)
    path = plot_jf_per_sequence(result, tmp_path / "charts" / "jf.png")
    assert path == tmp_path / "charts" / "jf.png"
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size[0] >= 600


def test_strip_has_one_row_per_frame_and_two_panels(folders: tuple[Path, Path], tmp_path: Path) -> None:
    gt, pred = folders
    score = score_folders(gt, pred).sequences[0]  # 6 evaluated frames
    path = write_overlay_strip(score, gt / "a", pred / "a", None, tmp_path / "a.png", num_frames=3, panel_width=80)
    with Image.open(path) as image:
        assert image.size == (160, 3 * (60 + CAPTION_HEIGHT))
        pixels = np.array(image.convert("RGB"))
    assert (pixels[CAPTION_HEIGHT + 1, 1] == 128).all()  # grey canvas where there are no frames


def test_gif_animates_every_predicted_frame_or_a_subsample(folders: tuple[Path, Path], tmp_path: Path) -> None:
    gt, pred = folders
    (pred / "a" / "00000.png").unlink()
    path = write_overlay_gif(gt / "a", pred / "a", None, tmp_path / "a.gif", panel_width=40)
    with Image.open(path) as image:
        assert image.format == "GIF" and image.n_frames == 7 and image.size == (80, 30 + CAPTION_HEIGHT)
    path = write_overlay_gif(gt / "a", pred / "a", None, tmp_path / "b.gif", panel_width=40, max_frames=3)
    with Image.open(path) as image:
        assert image.n_frames == 3  # every third frame of 7


def test_write_reports_returns_every_path_beside_the_predictions(folders: tuple[Path, Path]) -> None:
    gt, pred = folders
    result = score_folders(gt, pred)
    paths = write_reports(result, gt, pred)
    out = default_report_dir(pred)
    assert out == pred.parent / "pred_report"
    assert paths == [
        out / "jf_per_sequence.png",
        out / "a_strip.png",
        out / "a_overlay.gif",
        out / "b_strip.png",
        out / "b_overlay.gif",
    ]
    assert sorted(out.iterdir()) == sorted(paths)  # nothing else, no temporaries: no frames on disk, no MP4
    only = write_reports(result, gt, pred, out_dir=out / "again", sequences=["b"], mp4=True)
    assert [p.name for p in only] == ["jf_per_sequence.png", "b_strip.png", "b_overlay.gif", "b_overlay.mp4"]
