"""`pcl` and `cross_view` against plain-loop references, and their gradient structure."""

import math

import pytest
import torch

from components.losses import cross_view_loss, grid_positions, pcl_loss
from components.model.views import view_b_theta


def _theta(batch: int, flip: bool) -> torch.Tensor:
    """Full-frame view B, optionally flipped: view-B pixel (y, x) is view-A pixel (y, w-1-x)."""
    return view_b_theta(torch.ones(batch), torch.full((batch,), flip), torch.zeros(batch, 2))


def _sim(a: torch.Tensor, b: torch.Tensor) -> float:
    return -float(((a - b) ** 2).sum()) / math.sqrt(a.numel())


def _nll(logits: list[float], target: int, clipped: bool) -> float:
    """-log p(target) of a softmax: the released clipped -log(p + 1e-8), or exact."""
    log_z = math.log(sum(math.exp(v) for v in logits))
    return -math.log(math.exp(logits[target] - log_z) + 1e-8) if clipped else log_z - logits[target]


def _pcl_reference(za, zb, positions, flip, clipped=True):
    """Plain loops over clips, query frames, pixels and anchors (METHOD_REFERENCE §2.2)."""
    b, t, d, h, w = za.shape
    anchors = [(bb, za[bb, 0, :, int(p) // w, int(p) % w]) for bb in range(b) for p in positions[bb]]
    total, count = 0.0, 0
    for bb in range(b):
        for tt in range(1, t):
            for y in range(h):
                for x in range(w):
                    xa = w - 1 - x if flip else x
                    logits_a = [_sim(za[bb, tt, :, y, xa], anc) for _, anc in anchors]
                    own = [(_sim(zb[bb, tt, :, y, x], anc), n) for n, (cb, anc) in enumerate(anchors) if cb == bb]
                    target = max(own)[1]
                    total += _nll(logits_a, target, clipped)
                    count += 1
    return total / count


def _cross_view_reference(za0, zb0, positions, flip, clipped=True):
    b, d, h, w = za0.shape
    pts_a, pts_b = [], []
    for bb in range(b):
        for p in positions[bb]:
            y, x = int(p) // w, int(p) % w
            pts_a.append(za0[bb, :, y, w - 1 - x if flip else x])
            pts_b.append(zb0[bb, :, y, x])
    total = 0.0
    for m, a in enumerate(pts_a):
        total += _nll([_sim(a, c) for c in pts_b], m, clipped)
    return total / len(pts_a)


@pytest.mark.parametrize("flip", [False, True])
@pytest.mark.parametrize("log_form", ["clipped", "exact"])
def test_pcl_matches_plain_loops(flip, log_form):
    g = torch.Generator().manual_seed(0)
    za, zb = torch.randn(2, 3, 4, 4, 5, generator=g) * 3, torch.randn(2, 3, 4, 4, 5, generator=g) * 3
    positions = grid_positions(2, 4, 5, 2, g)
    got = pcl_loss(za, zb, _theta(2, flip), anchor_positions=positions, log_form=log_form, pseudo_label="own_clip")
    want = _pcl_reference(za, zb, positions, flip, clipped=log_form == "clipped")
    assert got.item() == pytest.approx(want, rel=1e-5)


@pytest.mark.parametrize("flip", [False, True])
@pytest.mark.parametrize("log_form", ["clipped", "exact"])
def test_cross_view_matches_plain_loops(flip, log_form):
    g = torch.Generator().manual_seed(1)
    za0, zb0 = torch.randn(3, 4, 6, 6, generator=g) * 3, torch.randn(3, 4, 6, 6, generator=g) * 3
    positions = grid_positions(3, 6, 6, 2, g)
    got = cross_view_loss(za0, zb0, _theta(3, flip), positions=positions, log_form=log_form)
    want = _cross_view_reference(za0, zb0, positions, flip, clipped=log_form == "clipped")
    assert got.item() == pytest.approx(want, rel=1e-5)


def _separable(batch: int, t: int, d: int, h: int, w: int) -> torch.Tensor:
    """Every (clip, pixel) gets its own far-apart embedding, identical across frames."""
    codes = torch.randn(batch, d, h, w, generator=torch.Generator().manual_seed(3)) * 10
    return codes[:, None].expand(batch, t, d, h, w).contiguous()


def test_cross_view_positive_pair_is_at_the_minimum_when_separable():
    z = _separable(2, 1, 16, 4, 4)[:, 0]
    positions = grid_positions(2, 4, 4, 4)
    aligned = cross_view_loss(z, z, _theta(2, False), positions=positions)
    shuffled = cross_view_loss(z, z[:, :, torch.tensor([1, 0, 3, 2])], _theta(2, False), positions=positions)
    assert aligned.item() < 1e-3
    assert shuffled.item() > aligned.item() + 1.0


def test_pcl_is_near_zero_when_pixels_equal_their_anchors():
    # every query pixel is a copy of one distinct anchor: its own anchor is both target and best match
    g = torch.Generator().manual_seed(4)
    za = torch.randn(2, 3, 8, 2, 2, generator=g) * 10
    za[:, 1:] = za[:, :1]
    positions = torch.arange(4).repeat(2, 1)
    loss = pcl_loss(za, za.clone(), _theta(2, False), anchor_positions=positions)
    assert loss.item() < 1e-3


def test_negatives_from_other_clips_change_the_value():
    g = torch.Generator().manual_seed(5)
    za0, zb0 = torch.randn(2, 4, 4, 4, generator=g), torch.randn(2, 4, 4, 4, generator=g)
    positions = grid_positions(2, 4, 4, 2, g)
    both = cross_view_loss(za0, zb0, _theta(2, False), positions=positions)
    alone = cross_view_loss(za0[:1], zb0[:1], _theta(1, False), positions=positions[:1])
    assert abs(both.item() - alone.item()) > 1e-3
    za, zb = torch.randn(2, 3, 4, 4, 4, generator=g), torch.randn(2, 3, 4, 4, 4, generator=g)
    pos = grid_positions(2, 4, 4, 2, g)
    pcl_both = pcl_loss(za, zb, _theta(2, False), anchor_positions=pos)
    pcl_alone = pcl_loss(za[:1], zb[:1], _theta(1, False), anchor_positions=pos[:1])
    assert abs(pcl_both.item() - pcl_alone.item()) > 1e-3


def test_pcl_gives_no_gradient_to_view_b_but_does_to_view_a():
    g = torch.Generator().manual_seed(6)
    za = torch.randn(2, 3, 4, 4, 4, generator=g, requires_grad=True)
    zb = torch.randn(2, 3, 4, 4, 4, generator=g, requires_grad=True)
    loss = pcl_loss(za, zb, _theta(2, True), anchor_grid=2, generator=g)
    grad_a, grad_b = torch.autograd.grad(loss, [za, zb], allow_unused=True)
    assert grad_b is None or torch.count_nonzero(grad_b) == 0  # pseudo-labels carry no gradient
    assert torch.count_nonzero(grad_a[:, 0]) > 0  # anchors
    assert torch.count_nonzero(grad_a[:, 1:]) > 0  # queries


def test_cross_view_gradient_reaches_both_views():
    g = torch.Generator().manual_seed(7)
    za0 = torch.randn(2, 4, 4, 4, generator=g, requires_grad=True)
    zb0 = torch.randn(2, 4, 4, 4, generator=g, requires_grad=True)
    grad_a, grad_b = torch.autograd.grad(cross_view_loss(za0, zb0, _theta(2, False), 2, g), [za0, zb0])
    assert torch.count_nonzero(grad_a) > 0 and torch.count_nonzero(grad_b) > 0
