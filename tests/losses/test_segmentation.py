"""Bootstrapped CE and Dice against values computed by hand on 2x2 examples."""

import math

import pytest
import torch
import torch.nn.functional as F

from components.losses import bootstrapped_cross_entropy, dice_loss
from components.losses.segmentation import clip_classes


def _two_by_two():
    # two classes; logits chosen so the per-pixel CE is easy to write down
    logits = torch.zeros(1, 2, 2, 2)
    logits[0, 1] = torch.tensor([[0.0, math.log(3)], [-math.log(3), 10.0]])
    labels = torch.tensor([[[1, 1], [1, 0]]])
    # p(label): 1/2, 3/4, 1/4, 1/(1+e^10)
    per_pixel = torch.tensor([math.log(2), -math.log(0.75), -math.log(0.25), math.log1p(math.exp(10))])
    return logits, labels, per_pixel


def test_bootstrapped_ce_keeping_everything_is_plain_ce():
    logits, labels, per_pixel = _two_by_two()
    assert bootstrapped_cross_entropy(logits, labels, 1.0).item() == pytest.approx(per_pixel.mean().item(), rel=1e-5)
    assert bootstrapped_cross_entropy(logits, labels, 1.0).item() == pytest.approx(F.cross_entropy(logits, labels).item())


def test_bootstrapped_ce_keeps_the_hardest_pixels():
    logits, labels, per_pixel = _two_by_two()
    hardest_half = sorted(per_pixel.tolist())[-2:]
    assert bootstrapped_cross_entropy(logits, labels, 0.5).item() == pytest.approx(sum(hardest_half) / 2, rel=1e-5)
    assert bootstrapped_cross_entropy(logits, labels, 0.25).item() == pytest.approx(max(per_pixel.tolist()), rel=1e-5)


def test_dice_by_hand():
    # probabilities exactly 1/0 where logits are large; one wrong pixel out of four
    logits = torch.tensor([[[[20.0, 20.0], [-20.0, -20.0]], [[-20.0, -20.0], [20.0, 20.0]]]])  # 1,2,2,2
    labels = torch.tensor([[[0, 0], [1, 0]]])
    # class 0: pred {00,01}, target {00,01,11}: dice = (2*2+1)/(2+3+1) = 5/6
    # class 1: pred {10,11}, target {10}:       dice = (2*1+1)/(2+1+1) = 3/4
    expected = 1 - (5 / 6 + 3 / 4) / 2
    assert dice_loss(logits, labels).item() == pytest.approx(expected, abs=1e-6)


def test_dice_is_zero_for_a_perfect_prediction():
    labels = torch.tensor([[[0, 1], [1, 0]]])
    logits = F.one_hot(labels, 2).permute(0, 3, 1, 2).float() * 40 - 20
    assert dice_loss(logits, labels).item() == pytest.approx(0.0, abs=1e-6)


def test_bootstrapping_keeps_each_clips_own_hardest_pixels():
    # clip 0 is easy everywhere but one pixel, clip 1 hard everywhere: per clip, clip 0 still contributes its
    # hardest pixel; over the batch, clip 1's pixels take all the places
    logits = torch.zeros(2, 2, 2, 2)
    logits[0, 1] = torch.tensor([[5.0, 5.0], [5.0, -1.0]])
    logits[1, 1] = torch.tensor([[-3.0, -3.0], [-3.0, -3.0]])
    labels = torch.ones(2, 2, 2, dtype=torch.long)
    per_pixel = F.cross_entropy(logits, labels, reduction="none").flatten(1)  # 2, 4
    per_clip = (per_pixel[0].max() + per_pixel[1].max()) / 2
    assert bootstrapped_cross_entropy(logits, labels, 0.25).item() == pytest.approx(per_clip.item(), rel=1e-6)
    batch = per_pixel.flatten().topk(2).values.mean()
    assert bootstrapped_cross_entropy(logits, labels, 0.25, per_clip=False).item() == pytest.approx(batch.item(), rel=1e-6)


def test_a_clip_without_a_second_object_is_a_two_class_problem():
    logits = torch.tensor([0.0, 1.0, 3.0]).view(1, 3, 1, 1).repeat(1, 1, 2, 2)
    labels = torch.ones(1, 2, 2, dtype=torch.long)
    classes = clip_classes(torch.tensor([[1.0, 0.0]]))
    assert classes.tolist() == [[True, True, False]]
    two = -math.log(math.exp(1) / (1 + math.exp(1)))  # softmax over background and object 1 only
    assert bootstrapped_cross_entropy(logits, labels, 1.0, classes).item() == pytest.approx(two, rel=1e-6)
    # the released Dice averages over those two classes; XMem's ignores background and keeps every object slot
    released = dice_loss(logits, labels, classes, "released")
    p1 = math.exp(1) / (1 + math.exp(1))
    want = ((1 - 1 / (4 * (1 - p1) + 1 + 1e-8)) + (1 - (2 * 4 * p1 + 1) / (4 * p1 + 4 + 1 + 1e-8))) / 2
    assert released.item() == pytest.approx(want, rel=1e-6)
    full = torch.softmax(logits[0, :, 0, 0], 0)
    xmem = ((1 - (2 * 4 * full[1] + 1) / (4 * full[1] + 4 + 1)) + (1 - 1 / (4 * full[2] + 1))) / 2
    assert dice_loss(logits, labels, classes, "xmem").item() == pytest.approx(xmem.item(), rel=1e-6)
