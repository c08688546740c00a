"""Similarity, grid sampling and schedules against hand computations."""

import math

import pytest
import torch

from components.losses import bootstrap_fraction, correspondence_ramp, gather_positions, grid_positions, l2_similarity


def test_l2_similarity_matches_a_plain_loop():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(5, 7, generator=g), torch.randn(4, 7, generator=g)
    expected = torch.tensor([[-((a[i] - b[j]) ** 2).sum().item() / math.sqrt(7) for j in range(4)] for i in range(5)])
    assert torch.allclose(l2_similarity(a, b), expected, atol=1e-5)


def test_l2_similarity_on_a_2d_example_by_hand():
    a = torch.tensor([[0.0, 0.0], [1.0, 2.0]])
    b = torch.tensor([[3.0, 4.0]])
    # ||(0,0)-(3,4)||^2 = 25, ||(1,2)-(3,4)||^2 = 8, sqrt(C) = sqrt(2)
    assert torch.allclose(l2_similarity(a, b), torch.tensor([[-25.0], [-8.0]]) / math.sqrt(2))


@pytest.mark.parametrize("grid,stride,max_offset", [(8, 3, 2), (4, 6, 5)])
def test_grid_positions_follow_the_released_lattice_on_24x24(grid, stride, max_offset):
    positions = grid_positions(64, 24, 24, grid, torch.Generator().manual_seed(1))
    assert positions.shape == (64, grid * grid)
    ys, xs = positions // 24, positions % 24
    assert int(ys.min()) >= 0 and int(ys.max()) <= 23 and int(xs.max()) <= 23
    first_y, first_x = ys[:, 0], xs[:, 0]
    assert set(first_y.tolist()) == set(range(max_offset + 1))  # every offset is drawn over 64 clips
    assert set(first_x.tolist()) == set(range(max_offset + 1))
    assert torch.all(ys.view(64, grid, grid)[:, 1:, 0] - ys.view(64, grid, grid)[:, :-1, 0] == stride)
    assert torch.all(xs.view(64, grid, grid)[:, 0, 1:] - xs.view(64, grid, grid)[:, 0, :-1] == stride)


def test_grid_positions_use_every_cell_of_a_map_smaller_than_the_grid():
    positions = grid_positions(2, 4, 3, 8)
    assert positions.shape == (2, 12)
    assert sorted(positions[0].tolist()) == list(range(12))


def test_gather_positions_picks_feature_vectors():
    maps = torch.arange(2 * 3 * 2 * 2, dtype=torch.float32).view(2, 3, 2, 2)
    picked = gather_positions(maps, torch.tensor([[0, 3], [1, 1]]))
    assert picked.shape == (2, 2, 3)
    assert torch.equal(picked[0, 1], maps[0, :, 1, 1])
    assert torch.equal(picked[1, 0], maps[1, :, 0, 1])


def test_correspondence_ramp_is_zero_then_linear_then_one():
    values = [correspondence_ramp(p, 0.2, 0.6) for p in (0.0, 0.19, 0.2, 0.4, 0.6, 0.9)]
    assert values == pytest.approx([0.0, 0.0, 0.0, 0.5, 1.0, 1.0])


def test_correspondence_ramp_defaults_to_the_released_iterations():
    values = [correspondence_ramp(it) for it in (0, 29_999, 30_000, 60_000, 89_999, 90_000, 299_999)]
    assert values == pytest.approx([0.0, 0.0, 0.0, 0.5, 59_999 / 60_000, 1.0, 1.0])


def test_bootstrap_fraction_anneals_from_one_to_top_p():
    assert bootstrap_fraction(0.1, 0.2, 0.6, 0.15) == 1.0
    assert bootstrap_fraction(0.4, 0.2, 0.6, 0.15) == pytest.approx(0.575)
    assert bootstrap_fraction(0.8, 0.2, 0.6, 0.15) == pytest.approx(0.15)
