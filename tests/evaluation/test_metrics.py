"""J, F and the statistics on masks small enough to check by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from components.evaluation.metrics import (
    boundary_f_measure,
    boundary_map,
    boundary_tolerance,
    decay_bin_edges,
    disk,
    region_similarity,
    statistics,
)


def _square(size: int, top: int, left: int, n: int, shape: tuple[int, int] | None = None) -> np.ndarray:
    mask = np.zeros(shape or (size, size), dtype=bool)
    mask[top : top + n, left : left + n] = True
    return mask


def test_j_is_intersection_over_union() -> None:
    gt = _square(10, 2, 2, 4)  # 16 px
    pred = np.roll(gt, 1, axis=1)  # 12 shared, union 20
    assert region_similarity(gt, pred) == pytest.approx(12 / 20)


def test_j_of_two_empty_masks_is_one_and_of_one_empty_mask_zero() -> None:
    empty = np.zeros((5, 5), dtype=bool)
    assert region_similarity(empty, empty) == 1.0
    assert region_similarity(_square(5, 1, 1, 2), empty) == 0.0
    assert region_similarity(empty, _square(5, 1, 1, 2)) == 0.0


def test_j_leaves_void_pixels_out_of_both_sets() -> None:
    gt = _square(10, 2, 2, 4)
    pred = gt.copy()
    pred[2:6, 6] = True  # 4 extra pixels
    void = np.zeros_like(gt)
    void[2:6, 6] = True
    assert region_similarity(gt, pred) == pytest.approx(16 / 20)
    assert region_similarity(gt, pred, void) == 1.0
    everything_void = np.ones_like(gt)
    assert region_similarity(gt, pred, everything_void) == 1.0  # empty union


def test_disk_is_euclidean_not_square_nor_opencv_ellipse() -> None:
    assert disk(1).tolist() == [[0, 1, 0], [1, 1, 1], [0, 1, 0]]
    assert disk(3).tolist() == [
        [0, 0, 0, 1, 0, 0, 0],
        [0, 1, 1, 1, 1, 1, 0],
        [0, 1, 1, 1, 1, 1, 0],
        [1, 1, 1, 1, 1, 1, 1],
        [0, 1, 1, 1, 1, 1, 0],
        [0, 1, 1, 1, 1, 1, 0],
        [0, 0, 0, 1, 0, 0, 0],
    ]
    assert disk(8).shape == (17, 17) and disk(8).sum() == 197


def test_boundary_map_marks_east_south_southeast_changes() -> None:
    mask = np.zeros((6, 6), dtype=bool)
    mask[1:4, 1:4] = True
    # a ring half a pixel up-left of the square, covering foreground and background pixels
    assert boundary_map(mask).astype(int).tolist() == [
        [1, 1, 1, 1, 0, 0],
        [1, 0, 0, 1, 0, 0],
        [1, 0, 0, 1, 0, 0],
        [1, 1, 1, 1, 0, 0],
        [0, 0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 0],
    ]


def test_boundary_map_single_pixel_gives_four() -> None:
    mask = np.zeros((5, 5), dtype=bool)
    mask[2, 2] = True
    assert sorted(zip(*np.nonzero(boundary_map(mask)))) == [(1, 1), (1, 2), (2, 1), (2, 2)]


def test_boundary_map_last_row_and_column_rules() -> None:
    mask = np.zeros((4, 4), dtype=bool)
    mask[3, 1:3] = True  # touches the bottom edge
    assert boundary_map(mask).astype(int).tolist() == [
        [0, 0, 0, 0],
        [0, 0, 0, 0],
        [1, 1, 1, 0],
        [1, 0, 1, 0],  # last row: east neighbour only; corner never
    ]
    assert not boundary_map(np.ones((5, 7), dtype=bool)).any()  # the image border is no boundary


def test_boundary_tolerance_is_ceil_of_diagonal_fraction() -> None:
    assert boundary_tolerance((480, 854)) == 8  # 0.008 * 979.6 = 7.84
    assert boundary_tolerance((240, 427)) == 4
    assert boundary_tolerance((20, 20)) == 1
    assert boundary_tolerance((100, 100)) == 2  # 1.13 rounds up
    assert boundary_tolerance((480, 854), bound_th=3) == 3  # >= 1: pixels


def test_f_of_shifted_square_by_hand() -> None:
    gt = _square(20, 5, 5, 5)  # tolerance 1 px on a 20 x 20 image
    assert boundary_f_measure(gt, np.roll(gt, 1, axis=1)) == pytest.approx(1.0)
    # shift 2: 12 of the 20 ring pixels lie within the plus-shaped disk(1) of the other ring
    assert boundary_f_measure(gt, np.roll(gt, 2, axis=1)) == pytest.approx(0.6)


def test_f_diagonal_neighbour_is_outside_disk_of_radius_one() -> None:
    gt = np.zeros((20, 20), dtype=bool)
    gt[5, 5] = True
    pred = np.zeros_like(gt)
    pred[6, 6] = True
    # 3 of 4 boundary pixels match each way; a square kernel would give 1.0
    assert boundary_f_measure(gt, pred) == pytest.approx(0.75)


def test_f_empty_cases() -> None:
    empty = np.zeros((20, 20), dtype=bool)
    assert boundary_f_measure(empty, empty) == 1.0
    assert boundary_f_measure(_square(20, 5, 5, 5), empty) == 0.0
    assert boundary_f_measure(empty, _square(20, 5, 5, 5)) == 0.0


def test_f_clears_void_before_taking_boundaries() -> None:
    gt = _square(20, 5, 5, 5)
    pred = gt.copy()
    pred[5:10, 10:16] = True  # a wrong extension to the right
    void = np.zeros_like(gt)
    void[:, 10:] = True
    assert boundary_f_measure(gt, pred) < 0.8
    assert boundary_f_measure(gt, pred, void) == 1.0


def test_shape_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError):
        region_similarity(np.zeros((4, 4)), np.zeros((4, 5)))
    with pytest.raises(ValueError):
        boundary_f_measure(np.zeros((4, 4)), np.zeros((4, 4)), np.zeros((5, 4)))


@pytest.mark.parametrize(
    ("n", "edges"),
    [
        (10, [0, 2, 5, 7, 9]),  # linspace(1, 10, 5) = 1, 3.25, 5.5, 7.75, 10
        (4, [0, 1, 2, 2, 3]),  # 2.5 rounds up (np.round alone would give 2)
        (2, [0, 0, 1, 1, 1]),
        (1, [0, 0, 0, 0, 0]),
        (300, [0, 75, 150, 224, 299]),  # the toolkit's uint8 edges would overflow here
    ],
)
def test_decay_bin_edges(n: int, edges: list[int]) -> None:
    assert decay_bin_edges(n) == edges


def test_statistics_by_hand() -> None:
    values = np.array([1, 1, 0.9, 0.8, 0.6, 0.5, 0.2, 0, 0, 0])
    stats = statistics(values)
    assert stats.mean == pytest.approx(0.5)
    assert stats.recall == pytest.approx(0.5)  # 0.5 itself is not above 0.5
    assert stats.decay == pytest.approx(2.9 / 3 - 0.0)  # bins [0:3] and [7:10]


def test_statistics_overlapping_bins_share_edge_frames() -> None:
    values = np.array([0.0, 1.0, 0.0, 0.0, 0.0, 1.0])  # edges 0, 1, 3, 4, 5
    assert statistics(values).decay == pytest.approx(0.5 - 0.5)  # bins [0:2], [4:6]


def test_statistics_nan_is_skipped_in_mean_and_fails_recall() -> None:
    stats = statistics(np.array([math.nan, 1.0, 1.0, 0.2]))
    assert stats.mean == pytest.approx(2.2 / 3)
    assert stats.recall == pytest.approx(0.5)


def test_statistics_of_nothing_is_nan_and_long_sequences_keep_a_decay() -> None:
    assert math.isnan(statistics(np.array([])).mean)
    values = np.linspace(1, 0, 300)
    assert statistics(values).decay == pytest.approx(values[:76].mean() - values[224:].mean())
