"""OCL against a hand computation, its validity rules and its optimum."""

import math

import pytest
import torch

from components.losses import ocl_loss, region_prototypes


def test_region_prototypes_are_mask_weighted_means():
    emb = torch.zeros(1, 1, 2, 2, 2)
    emb[0, 0, 0] = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    emb[0, 0, 1] = torch.tensor([[10.0, 10.0], [0.0, 0.0]])
    masks = torch.zeros(1, 1, 1, 2, 2)
    masks[0, 0, 0, 0, :] = 1.0  # object = top row
    protos, valid = region_prototypes(emb, masks, torch.ones(1, 1))
    assert torch.allclose(protos[0, 0, 1], torch.tensor([1.5, 10.0]))  # object
    assert torch.allclose(protos[0, 0, 0], torch.tensor([3.5, 0.0]))  # background = bottom row
    assert valid.all()


def test_ocl_by_hand_on_two_clips():
    # Each region has a constant embedding, so prototypes are those constants.
    # Clip b, frame 0: background e_bg[b], object e_obj[b]; frame 1: object q[b].
    e_bg = [torch.tensor([0.0, 0.0]), torch.tensor([4.0, 0.0])]
    e_obj = [torch.tensor([1.0, 0.0]), torch.tensor([0.0, 3.0])]
    q = [torch.tensor([1.0, 1.0]), torch.tensor([0.0, 2.0])]
    emb = torch.zeros(2, 2, 2, 2, 2)  # B, T, D, h, w; object = left column, background = right column
    masks = torch.zeros(2, 2, 1, 2, 2)
    masks[:, :, 0, :, 0] = 1.0
    for b in range(2):
        emb[b, 0, :, :, 0] = e_obj[b][:, None]
        emb[b, 0, :, :, 1] = e_bg[b][:, None]
        emb[b, 1, :, :, 0] = q[b][:, None]
        emb[b, 1, :, :, 1] = e_bg[b][:, None]
    candidates = [e_bg[0], e_obj[0], e_bg[1], e_obj[1]]

    def sim(a, c):
        return -float(((a - c) ** 2).sum()) / math.sqrt(2)

    expected = 0.0
    for b in range(2):
        logits = [sim(q[b], c) for c in candidates]
        positive = logits[2 * b + 1]
        expected += math.log(sum(math.exp(v) for v in logits)) - positive
    expected /= 2
    assert ocl_loss(emb, masks, torch.ones(2, 1)).item() == pytest.approx(expected, rel=1e-5)


def test_ocl_skips_absent_objects_and_keeps_the_graph():
    emb = torch.randn(1, 3, 4, 4, 4, requires_grad=True)
    masks = torch.zeros(1, 3, 2, 64, 64)
    loss = ocl_loss(emb, masks, torch.tensor([[1.0, 0.0]]))  # object 1 empty everywhere, slot 2 unused
    assert loss.item() == 0.0
    loss.backward()  # still differentiable: a training step with no visible object must not crash


def test_ocl_is_lower_when_objects_keep_their_embedding():
    g = torch.Generator().manual_seed(0)
    b, t, d, h, w = 3, 3, 8, 4, 4
    masks = torch.zeros(b, t, 2, h * 16, w * 16)
    masks[:, :, 0, :32, :32] = 1
    masks[:, :, 1, 32:, 32:] = 1
    region_codes = torch.randn(b, 3, d, generator=g) * 5  # bg, obj1, obj2 per clip
    labels = torch.zeros(h, w, dtype=torch.long)
    labels[:2, :2], labels[2:, 2:] = 1, 2
    coherent = region_codes[:, labels].permute(0, 3, 1, 2)[:, None].expand(b, t, d, h, w).contiguous()
    shuffled = coherent.clone()
    shuffled[:, 1:] = coherent[torch.tensor([1, 2, 0])][:, 1:]  # later frames carry another clip's objects
    selector = torch.ones(b, 2)
    assert ocl_loss(coherent, masks, selector).item() < ocl_loss(shuffled, masks, selector).item() - 1.0
