"""View B: theta geometry (the memory read is tested in test_memory_read.py)."""

import math

import pytest
import torch

from components.model.views import apply_theta, make_view_b, sample_view_b_theta, view_b_theta, warp_to_view_b


@pytest.mark.parametrize("flip", [False, True])
def test_theta_warp_lands_on_the_zoomed_and_flipped_pixels(flip):
    # scale 0.5 centred on the top-left quadrant of an 8x8 map: each view-B pixel is a 2x2 upsampled
    # copy of that quadrant, mirrored when flipped
    maps = torch.arange(2 * 64, dtype=torch.float32).view(1, 2, 8, 8)
    theta = view_b_theta(torch.tensor([0.5]), torch.tensor([flip]), torch.tensor([[-0.5, -0.5]]))
    expected = maps[:, :, :4, :4].repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
    if flip:
        # x_A = -s*u + c: the left edge of view B samples the crop's right edge
        expected = expected.flip(-1)
    assert torch.equal(warp_to_view_b(maps, theta), expected)


def test_view_b_frames_follow_theta_exactly():
    # a frame whose channels are its own normalised x and y coordinates: view B must carry theta*(u, 1)
    size = 32
    coords = (torch.arange(size) * 2 + 1) / size - 1
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    frame = torch.stack([xx, yy, torch.zeros_like(xx)])[None, None]  # 1, 1, 3, H, W
    theta = sample_view_b_theta(1, generator=torch.Generator().manual_seed(0))
    view = make_view_b(frame, theta)
    expected_x = theta[0, 0, 0] * xx + theta[0, 0, 1] * yy + theta[0, 0, 2]
    expected_y = theta[0, 1, 0] * xx + theta[0, 1, 1] * yy + theta[0, 1, 2]
    inner = slice(1, -1)  # bilinear sampling of a linear ramp is exact away from the border clamp
    assert torch.allclose(view.frames[0, 0, 0][inner, inner], expected_x[inner, inner], atol=1e-5)
    assert torch.allclose(view.frames[0, 0, 1][inner, inner], expected_y[inner, inner], atol=1e-5)


def test_sampled_crops_are_zoom_ins_inside_the_frame_with_flips_half_the_time():
    theta = sample_view_b_theta(2000, generator=torch.Generator().manual_seed(1))
    scale = theta[:, 1, 1]
    assert float(scale.min()) >= 0.5 and float(scale.max()) <= 1.0
    corners = torch.tensor([[-1.0, -1.0, 1.0], [1.0, 1.0, 1.0], [-1.0, 1.0, 1.0], [1.0, -1.0, 1.0]])
    mapped = torch.einsum("bij,kj->bki", theta, corners)
    assert float(mapped.abs().max()) <= 1.0 + 1e-6
    flip_rate = float((theta[:, 0, 0] < 0).float().mean())
    assert 0.45 < flip_rate < 0.55


def test_apply_theta_identity_keeps_images():
    images = torch.rand(2, 3, 16, 16)
    identity = view_b_theta(torch.ones(2), torch.zeros(2, dtype=torch.bool), torch.zeros(2, 2))
    assert torch.allclose(apply_theta(images, identity), images, atol=1e-6)
