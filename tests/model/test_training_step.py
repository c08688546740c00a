"""The wrapper plus losses as one training step: gradients, stop-gradients, bf16, learning."""

import torch

from components.config import LossConfig, config_from_dict
from components.losses import compute_losses
from components.model import STCNTrainWrapper
from components.training.batch import random_clip_batch

ALL_TERMS = {"preset": "released", "ocl_weight": 0.1, "dice_weight": 0.4}


def _grads(loss, module):
    return torch.autograd.grad(loss, list(module.parameters()), allow_unused=True, retain_graph=True)


def test_correspondence_gradients_reach_head_g_and_the_key_encoder_only(small_config):
    model = STCNTrainWrapper(small_config)
    batch = random_clip_batch(2, 3, 64, 2, torch.Generator().manual_seed(0))
    out = model(batch, generator=torch.Generator().manual_seed(1))
    terms = compute_losses(out, batch, config_from_dict(LossConfig, ALL_TERMS), progress=1.0, iteration=150_000)
    corr = terms["pcl"] + terms["cross_view"] + terms["ocl"]
    for module in (model.correspondence_head, model.key_encoder.layer3):
        assert any(g is not None and torch.count_nonzero(g) > 0 for g in _grads(corr, module))
    for module in (model.decoder, model.key_proj, model.value_encoder):
        assert all(g is None or torch.count_nonzero(g) == 0 for g in _grads(corr, module))


def test_view_b_later_frames_carry_no_gradient(small_config):
    model = STCNTrainWrapper(small_config)
    batch = random_clip_batch(2, 3, 64, 1)
    out = model(batch)
    later = _grads(out["embed_b"][:, 1:].sum(), model)
    assert all(g is None or torch.count_nonzero(g) == 0 for g in later)
    first = _grads(out["embed_b"][:, 0].sum(), model.key_encoder)
    assert any(g is not None and torch.count_nonzero(g) > 0 for g in first)


def test_terms_stay_finite_and_fp32_under_bf16_autocast(small_config):
    model = STCNTrainWrapper(small_config)
    batch = random_clip_batch(2, 3, 64, 2, torch.Generator().manual_seed(2))
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        out = model(batch)
        terms = compute_losses(out, batch, config_from_dict(LossConfig, ALL_TERMS), progress=0.9, iteration=135_000)
    assert out["embed_a"].dtype == torch.float32
    for name, value in terms.items():
        assert value.dtype == torch.float32, name
        assert torch.isfinite(value).all(), name
    terms["total"].backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_baseline_weights_compute_only_the_mask_loss(small_config):
    model = STCNTrainWrapper(small_config)
    batch = random_clip_batch(2, 3, 64, 2)
    config = config_from_dict(LossConfig, {"preset": "baseline"})
    terms = compute_losses(model(batch, with_correspondence=config.uses_correspondence), batch, config, 0.5, iteration=75_000)
    assert set(terms) == {"seg", "bootstrap_p", "lambda", "total"}
    assert torch.allclose(terms["total"], terms["seg"])


def test_total_follows_the_ramp(small_config):
    model = STCNTrainWrapper(small_config)
    batch = random_clip_batch(2, 3, 64, 2)
    config = config_from_dict(LossConfig, {"preset": "released"})
    out = model(batch, view_b=None, generator=torch.Generator().manual_seed(3))
    early = compute_losses(out, batch, config, 0.1, torch.Generator().manual_seed(4), iteration=15_000)
    mid = compute_losses(out, batch, config, 0.4, torch.Generator().manual_seed(4), iteration=60_000)
    assert torch.allclose(early["total"], early["seg"])
    expected = mid["seg"] + 0.5 * (0.2 * mid["pcl"] + 0.04 * mid["cross_view"])
    assert torch.allclose(mid["total"], expected)


def test_a_few_steps_lower_the_loss_on_a_fixed_batch(small_config):
    model = STCNTrainWrapper(small_config)
    batch = random_clip_batch(4, 3, 64, 2, torch.Generator().manual_seed(5))
    config = config_from_dict(LossConfig, ALL_TERMS)
    optimiser = torch.optim.AdamW(model.parameters(), lr=5e-4)

    def step(seed: int) -> float:
        out = model(batch, generator=torch.Generator().manual_seed(seed))
        total = compute_losses(out, batch, config, progress=1.0, iteration=150_000, generator=torch.Generator().manual_seed(seed))["total"]
        optimiser.zero_grad()
        total.backward()
        optimiser.step()
        return total.item()

    first = step(0)
    for i in range(1, 12):
        last = step(0)
    assert last < 0.8 * first, (first, last)
