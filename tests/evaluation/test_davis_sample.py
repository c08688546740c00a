"""Scoring real DAVIS 2016 footage (../shared/data/davis2016-sample-480p) when it is present.

The perturbed-copy numbers were computed with the official davis2017-evaluation code (its
metrics.py, utils.db_statistics and evaluation flow, run on numpy 2 with `np.bool` -> `bool`
and skimage's `disk` written out) on the same predictions, ground truth saved as indexed PNGs.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from components.evaluation import read_label_map, score_folders
from components.evaluation.masks import list_frames
from tests.evaluation.masks_util import write_indexed

SAMPLE = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "davis2016-sample-480p"
pytestmark = pytest.mark.skipif(not SAMPLE.is_dir(), reason=f"DAVIS sample not found at {SAMPLE}")

# sequence: (J-Mean, J-Recall, J-Decay, F-Mean, F-Recall, F-Decay) from the official toolkit's code
TOOLKIT = {
    "bear": (0.817184651682821, 0.9, 0.007411028380349238, 0.8752031363719286, 0.9, 0.0022844661081404816),
    "boat": (0.6692835556514146, 0.9041095890410958, 0.003563714602279, 0.8138831047569501, 0.9041095890410958,
             -0.0003635871851436212),
    "swing": (0.6800369796103934, 0.896551724137931, -0.0028787462901203043, 0.8093796708110665, 0.896551724137931,
              0.008469670583186595),
}


def perturb(mask: np.ndarray, t: int) -> np.ndarray:
    """A deterministic imperfect prediction: shifted, eroded on even frames, lost every tenth."""
    if t % 10 == 5:
        return np.zeros_like(mask, dtype=np.uint8)
    moved = np.roll(mask.astype(np.uint8), (t % 4, 2 * (t % 5)), axis=(0, 1))
    if t % 2 == 0:
        moved = cv2.erode(moved, np.ones((5, 5), np.uint8))
    return moved


@pytest.fixture(scope="module")
def perturbed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("perturbed")
    for seq_dir in sorted((SAMPLE / "Annotations").iterdir()):
        for t, frame in enumerate(list_frames(seq_dir)):
            write_indexed(out / seq_dir.name / f"{frame}.png", perturb(read_label_map(seq_dir / f"{frame}.png"), t))
    return out


def test_ground_truth_against_itself_is_perfect() -> None:
    result = score_folders(SAMPLE, SAMPLE / "Annotations")
    assert [s.name for s in result.sequences] == ["bear", "boat", "swing"]
    assert sum(len(s.frames) for s in result.sequences) == 217 - 6
    for obj in result.objects:
        assert np.all(obj.j == 1.0) and np.all(obj.f == 1.0)
    assert result.global_metrics() == {
        "J&F-Mean": 1.0, "J-Mean": 1.0, "J-Recall": 1.0, "J-Decay": 0.0, "F-Mean": 1.0, "F-Recall": 1.0, "F-Decay": 0.0,
    }


def test_perturbed_copy_matches_the_official_toolkit(perturbed: Path) -> None:
    result = score_folders(SAMPLE, perturbed)
    for seq in result.sequences:
        (obj,) = seq.objects
        ours = (obj.j_stats.mean, obj.j_stats.recall, obj.j_stats.decay,
                obj.f_stats.mean, obj.f_stats.recall, obj.f_stats.decay)
        assert ours == pytest.approx(TOOLKIT[seq.name], abs=1e-9), seq.name
    assert 0.3 < result.global_metrics()["J&F-Mean"] < 0.95
