"""corrvos's losses against the official code's recorded outputs and gradients (tests/losses/fixtures).

The fixture was written by tools/parity/record_losses.py running VOS_Correspondence, STCN and XMem on
the inputs of official_inputs.py. Each difference issue #21 found has a test here that fails if it
comes back: the clipped log, the released pseudo-label, per-clip bootstrapping over each clip's own
classes, the released Dice (background included) and XMem's (objects only), schedules in iterations.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from components.config import CorrvosConfig, LossConfig, load_yaml_config
from components.losses import (
    bootstrap_fraction,
    compute_losses,
    correspondence_ramp,
    cross_view_loss,
    gather_positions,
    pcl_loss,
    pseudo_labels,
)
from components.training.batch import ClipBatch
from tests.losses.official_inputs import (
    CORR_SCALES,
    FIXTURE,
    SEG_ITERATIONS,
    STCN_OBJECTS,
    XMEM_OBJECTS,
    correspondence_keys,
    masks_and_selector,
    segmentation_case,
    view_theta,
)

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
TOL = 1e-5


@pytest.fixture(scope="module")
def official() -> dict[str, np.ndarray]:
    with np.load(FIXTURE) as data:
        return {k: data[k] for k in data.files}


def _loss_config(name: str) -> LossConfig:
    return load_yaml_config(CorrvosConfig, CONFIGS / name).loss


def _max_diff(got: torch.Tensor, want: np.ndarray) -> float:
    return float((got.detach() - torch.from_numpy(want)).abs().max())


def _pcl(scale: float, official: dict[str, np.ndarray], config: LossConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """corrvos pcl on the fixture's keys and anchors, with `config`'s options; (loss, grad wrt view A)."""
    keys_a, keys_b = correspondence_keys(scale)
    keys_a.requires_grad_(True)
    anchors = torch.from_numpy(official[f"corr_{scale:g}_anchors"].astype(np.int64))
    loss = pcl_loss(keys_a, keys_b, view_theta(), anchor_positions=anchors, log_form=config.correspondence_log,
                    pseudo_label=config.pseudo_label)
    (grad,) = torch.autograd.grad(loss, [keys_a])
    return loss, grad


def _cross_view(scale: float, official: dict[str, np.ndarray], config: LossConfig) -> tuple[torch.Tensor, ...]:
    keys_a, keys_b = correspondence_keys(scale)
    a0, b0 = keys_a[:, 0].clone().requires_grad_(True), keys_b[:, 0].clone().requires_grad_(True)
    points = torch.from_numpy(official[f"corr_{scale:g}_points"].astype(np.int64))
    loss = cross_view_loss(a0, b0, view_theta(), positions=points, log_form=config.correspondence_log)
    return (loss, *torch.autograd.grad(loss, [a0, b0]))


@pytest.mark.parametrize("scale", CORR_SCALES)
def test_pcl_matches_the_released_stloss(official, scale):
    loss, grad = _pcl(scale, official, _loss_config("stcn-released.yaml"))
    assert abs(loss.item() - float(official[f"corr_{scale:g}_pcl"])) < TOL
    assert _max_diff(grad, official[f"corr_{scale:g}_pcl_grad_a"]) < TOL


@pytest.mark.parametrize("scale", CORR_SCALES)
def test_cross_view_matches_the_released_cvloss(official, scale):
    loss, grad_a, grad_b = _cross_view(scale, official, _loss_config("stcn-released.yaml"))
    assert abs(loss.item() - float(official[f"corr_{scale:g}_cross_view"])) < TOL
    assert _max_diff(grad_a, official[f"corr_{scale:g}_cross_view_grad_a0"]) < TOL
    assert _max_diff(grad_b, official[f"corr_{scale:g}_cross_view_grad_b0"]) < TOL


def test_exact_cross_entropy_departs_where_probabilities_fall_below_1e8(official):
    """The clipped log matters: with exact CE the large-scale case is far off, the small one is not."""
    exact = dataclasses.replace(_loss_config("stcn-released.yaml"), correspondence_log="exact")
    small, large = CORR_SCALES[0], CORR_SCALES[-1]
    assert abs(_pcl(small, official, exact)[0].item() - float(official[f"corr_{small:g}_pcl"])) < 1e-4
    assert _pcl(large, official, exact)[0].item() > float(official[f"corr_{large:g}_pcl"]) + 1.0
    assert _cross_view(large, official, exact)[0].item() > float(official[f"corr_{large:g}_cross_view"]) + 1.0


@pytest.mark.parametrize("scale", CORR_SCALES)
def test_pseudo_labels_are_the_released_ones(official, scale):
    """Where every own-clip probability underflows, the release takes index 0 (clip 0's first anchor)."""
    keys_a, keys_b = correspondence_keys(scale)
    anchors = gather_positions(keys_a[:, 0], torch.from_numpy(official[f"corr_{scale:g}_anchors"].astype(np.int64)))
    anchors = anchors.reshape(-1, keys_a.shape[2])
    want = torch.from_numpy(official[f"corr_{scale:g}_pseudo"].astype(np.int64))  # B, T-1, H, W
    got = pseudo_labels(keys_b[:, 1:], anchors, _loss_config("stcn-released.yaml").pseudo_label)
    assert torch.equal(got.view_as(want), want)
    own = pseudo_labels(keys_b[:, 1:], anchors, "own_clip").view_as(want)
    other_clip = want // official[f"corr_{scale:g}_anchors"].shape[1] != torch.arange(want.shape[0])[:, None, None, None]
    assert bool((own != want)[other_clip].all())  # the own-clip rule never crosses clips
    if scale == CORR_SCALES[-1]:
        assert bool(other_clip.any())


def test_the_own_clip_pseudo_label_changes_the_exact_loss(official):
    """Under the clipped log the crossed pixels are saturated either way; under exact CE the rule shows."""
    large = CORR_SCALES[-1]
    exact = dataclasses.replace(_loss_config("stcn-released.yaml"), correspondence_log="exact")
    own = dataclasses.replace(exact, pseudo_label="own_clip")
    assert abs(_pcl(large, official, exact)[0].item() - _pcl(large, official, own)[0].item()) > 1.0


def _segmentation(objects: tuple[int, ...], max_objects: int, seed: int, config: LossConfig, iteration: int):
    """corrvos's segmentation total (seg + dice) on the fixture's logits; (total, grad wrt logits)."""
    logits, labels = segmentation_case(objects, max_objects, seed)
    masks, selector = masks_and_selector(labels, objects, max_objects)
    batch = ClipBatch(frames=torch.zeros(*labels.shape[:2], 3, *labels.shape[2:]), masks=masks, selector=selector)
    assert torch.equal(batch.labels(), labels)
    logits.requires_grad_(True)
    terms = compute_losses({"logits": logits}, batch, config, progress=0.0, iteration=iteration)
    (grad,) = torch.autograd.grad(terms["total"], [logits])
    return terms, grad


@pytest.mark.parametrize("iteration", SEG_ITERATIONS)
def test_seg_and_dice_match_the_released_loss_computer(official, iteration):
    config = _loss_config("stcn-baseline.yaml")  # bootstrapped CE + 0.4 x released Dice
    terms, grad = _segmentation(STCN_OBJECTS, 2, iteration, config, iteration)
    assert abs(terms["total"].item() - float(official[f"seg_released_{iteration}"])) < TOL
    assert _max_diff(grad, official[f"seg_released_{iteration}_grad"]) < TOL
    assert terms["bootstrap_p"].item() == pytest.approx(float(official[f"seg_released_{iteration}_p"]), abs=1e-7)


@pytest.mark.parametrize("iteration", SEG_ITERATIONS)
def test_seg_matches_stcn(official, iteration):
    config = dataclasses.replace(_loss_config("stcn-baseline.yaml"), dice_weight=0.0)  # STCN: no Dice
    terms, grad = _segmentation(STCN_OBJECTS, 2, iteration, config, iteration)
    assert abs(terms["total"].item() - float(official[f"seg_stcn_{iteration}"])) < TOL
    assert _max_diff(grad, official[f"seg_stcn_{iteration}_grad"]) < TOL


@pytest.mark.parametrize("iteration", SEG_ITERATIONS)
def test_seg_and_dice_match_xmem(official, iteration):
    config = _loss_config("xmem-baseline.yaml")  # bootstrapped CE + XMem's Dice
    terms, grad = _segmentation(XMEM_OBJECTS, 3, iteration + 1, config, iteration)
    assert abs(terms["total"].item() - float(official[f"seg_xmem_{iteration}"])) < TOL
    assert _max_diff(grad, official[f"seg_xmem_{iteration}_grad"]) < TOL


@pytest.mark.parametrize("change", [{"bootstrap_scope": "batch"}, {"dice_form": "xmem"}])
def test_each_segmentation_departure_breaks_released_parity(official, change):
    """Per-batch top-p with every class slot, or Dice without background: the released total moves."""
    iteration = SEG_ITERATIONS[-1]  # keep 15%: where per-clip and per-batch top-p differ
    config = dataclasses.replace(_loss_config("stcn-baseline.yaml"), **change)
    terms, _ = _segmentation(STCN_OBJECTS, 2, iteration, config, iteration)
    assert abs(terms["total"].item() - float(official[f"seg_released_{iteration}"])) > 1e-3


def test_released_dice_with_background_breaks_xmem_parity(official):
    iteration = SEG_ITERATIONS[0]
    config = dataclasses.replace(_loss_config("xmem-baseline.yaml"), dice_form="released")
    terms, _ = _segmentation(XMEM_OBJECTS, 3, iteration + 1, config, iteration)
    assert abs(terms["total"].item() - float(official[f"seg_xmem_{iteration}"])) > 1e-3


@pytest.mark.parametrize("name", ["stcn-released.yaml", "stcn-baseline.yaml", "stcn-poster.yaml",
                                  "xmem-released.yaml", "xmem-baseline.yaml"])
def test_paper_scale_schedules_are_the_released_iterations(official, name):
    loss = _loss_config(name)
    assert loss.schedule_unit == "iterations" and loss.departures == ()
    for it, factor, p in zip(official["schedule_iterations"], official["schedule_factor"],
                             official["schedule_bootstrap_p"]):
        assert correspondence_ramp(float(it), loss.ramp_start, loss.ramp_end) == pytest.approx(factor, abs=1e-9)
        assert bootstrap_fraction(float(it), loss.bootstrap_start, loss.bootstrap_end,
                                  loss.bootstrap_top_p) == pytest.approx(p, abs=1e-12)


def test_the_ramp_counts_iterations_in_a_300k_pretraining_stage_too():
    """The release ramps 30K -> 90K in every stage: halfway at 60K of 300K, not 20% of the stage."""
    config = dataclasses.replace(_loss_config("stcn-released.yaml"), pcl_weight=0.0, cross_view_weight=0.0)
    logits, labels = segmentation_case(STCN_OBJECTS, 2, seed=0)
    masks, selector = masks_and_selector(labels, STCN_OBJECTS, 2)
    batch = ClipBatch(frames=torch.zeros(*labels.shape[:2], 3, *labels.shape[2:]), masks=masks, selector=selector)
    terms = compute_losses({"logits": logits}, batch, config, progress=60_000 / 300_000, iteration=60_000)
    assert terms["lambda"].item() == pytest.approx(0.5)
    assert terms["bootstrap_p"].item() == pytest.approx(0.15 + 0.85 * (10_000 / 50_000))
    with pytest.raises(ValueError, match="iteration"):
        compute_losses({"logits": logits}, batch, config, progress=0.2)


def test_no_shipped_config_of_paper_scale_clips_gradients():
    for name in ("stcn-released.yaml", "stcn-baseline.yaml", "stcn-poster.yaml", "xmem-released.yaml",
                 "xmem-baseline.yaml"):
        config = load_yaml_config(CorrvosConfig, CONFIGS / name)
        assert config.pretrain.grad_clip is None and config.train.grad_clip is None, name


def test_the_fixture_records_the_official_commits(official):
    meta = json.loads(str(official["meta"]))
    assert set(meta["commits"]) == {"vos_correspondence", "stcn", "xmem"}
    assert all(len(c) == 40 for c in meta["commits"].values())
