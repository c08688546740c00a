"""XMem network and training wrapper: shapes, key heads, sensory memory, state dicts, one step learns."""

import pytest
import torch

from components.config import LossConfig, ModelConfig, config_from_dict
from components.losses import compute_losses
from components.model import XMem, XMemTrainWrapper, build_network, build_train_wrapper
from components.model.checkpoint import load_inference_checkpoint, save_inference_checkpoint
from components.training.batch import random_clip_batch

ALL_TERMS = {"preset": "released", "ocl_weight": 0.1, "dice_weight": 1.0}


@pytest.fixture()
def xmem_small() -> ModelConfig:
    return config_from_dict(ModelConfig, {"preset": "small", "name": "xmem"})


@pytest.mark.parametrize("objects", [1, 3])
def test_inference_network_shapes_and_key_heads(xmem_small, objects):
    model = XMem(xmem_small).eval()
    frames = torch.rand(2, 3, 64, 96)
    with torch.no_grad():
        features = model.encode_key(frames)
        hidden = model.initial_hidden(features, objects)
        values, hidden = model.encode_value(frames, features.f16, hidden, torch.rand(2, objects, 64, 96), deep_update=True)
        readout = model.read(features.key[:, :, None], features.shrinkage[:, :, None], values[:, :, :, None], features)
        logits, probs, new_hidden = model.segment(features, readout, hidden)
    assert features.key.shape == features.selection.shape == (2, 64, 4, 6)
    assert features.shrinkage.shape == (2, 1, 4, 6)
    assert (features.shrinkage >= 1).all() and ((features.selection > 0) & (features.selection < 1)).all()
    assert values.shape == readout.shape == (2, objects, xmem_small.value_dim, 4, 6)
    assert hidden.shape == new_hidden.shape == (2, objects, xmem_small.hidden_dim, 4, 6)
    assert logits.shape == (2, objects + 1, 64, 96) and probs.shape == (2, objects, 64, 96)
    assert torch.allclose(torch.softmax(logits, 1).sum(1), torch.ones(2, 64, 96), atol=1e-5)


def test_sensory_memory_changes_only_when_asked(xmem_small):
    model = XMem(xmem_small).eval()
    frames = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        features = model.encode_key(frames)
        hidden = model.initial_hidden(features, 2)
        _, kept = model.encode_value(frames, features.f16, hidden, torch.rand(1, 2, 64, 64), deep_update=False)
        _, deep = model.encode_value(frames, features.f16, hidden, torch.rand(1, 2, 64, 64), deep_update=True)
        readout = torch.rand(1, 2, xmem_small.value_dim, 4, 4)
        _, _, same = model.segment(features, readout, deep, update_hidden=False)
        _, _, updated = model.segment(features, readout, deep, update_hidden=True)
        # the decoder reads the hidden state: a different sensory memory gives a different mask
        _, probs_a, _ = model.segment(features, readout, deep, update_hidden=False)
        _, probs_b, _ = model.segment(features, readout, torch.zeros_like(deep), update_hidden=False)
    assert torch.equal(kept, hidden) and not torch.equal(deep, hidden)
    assert torch.equal(same, deep) and not torch.equal(updated, deep)
    assert updated.abs().max() <= 1.0  # a GRU state: convex mix of a tanh candidate and a bounded state
    assert not torch.allclose(probs_a, probs_b)


def test_xmem_preset_has_the_paper_sizes():
    model = build_network(config_from_dict(ModelConfig, {"preset": "xmem"}))
    assert isinstance(model, XMem) and model.config.name == "xmem"
    assert model.key_encoder.channels == (256, 512, 1024)
    assert model.key_proj.key.out_channels == model.key_proj.selection.out_channels == 64
    assert model.key_proj.shrinkage.out_channels == 1
    assert model.value_encoder.trunk.conv1.in_channels == 5
    assert model.hidden_reinforce.transform.out_channels == 3 * 64


def test_training_wrapper_unrolls_eight_frames_with_three_objects(xmem_small):
    model = build_train_wrapper(xmem_small)
    assert isinstance(model, XMemTrainWrapper)
    batch = random_clip_batch(1, 8, 32, 3, torch.Generator().manual_seed(0))
    out = model(batch, generator=torch.Generator().manual_seed(1))
    assert out["logits"].shape == (1, 7, 4, 32, 32)
    assert out["object_probs"].shape == (1, 7, 3, 32, 32)
    assert out["embed_a"].shape == out["embed_b"].shape == (1, 8, 64, 2, 2)
    assert set(model(batch, with_correspondence=False)) == {"logits", "object_probs"}


def test_reference_frames_are_frame_zero_plus_at_most_two_earlier(xmem_small):
    model = XMemTrainWrapper(xmem_small)
    generator = torch.Generator().manual_seed(0)
    assert model._reference_frames(2, generator) == [0, 1]
    assert model._reference_frames(3, generator) == [0, 1, 2]
    for index in range(4, 8):
        for _ in range(10):
            refs = model._reference_frames(index, generator)
            assert refs[0] == 0 and len(refs) == 3 and len(set(refs)) == 3 and max(refs) < index


def test_every_parameter_but_head_g_gets_a_gradient_from_the_mask_loss(xmem_small):
    """DDP runs without find_unused_parameters: every module must be used on every step."""
    model = XMemTrainWrapper(replace_prob(xmem_small, 0.0))
    batch = random_clip_batch(2, 4, 64, 2, torch.Generator().manual_seed(3))
    out = model(batch, with_correspondence=False)
    terms = compute_losses(out, batch, config_from_dict(LossConfig, {"preset": "baseline"}), progress=0.5, iteration=75_000)
    terms["total"].backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None and not n.startswith("correspondence_head.")]
    assert not missing, missing


def test_inference_state_dict_round_trips_through_a_checkpoint(xmem_small, tmp_path):
    wrapper = XMemTrainWrapper(xmem_small)
    state = wrapper.inference_state_dict()
    assert not any(k.startswith("correspondence_head.") for k in state)
    save_inference_checkpoint(str(tmp_path / "m.pt"), state, xmem_small)
    model, _ = load_inference_checkpoint(str(tmp_path / "m.pt"))
    assert isinstance(model, XMem)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in state.items())


def test_losses_are_finite_under_bf16_and_a_few_steps_learn(xmem_small):
    torch.manual_seed(0)
    model = XMemTrainWrapper(xmem_small)
    config = config_from_dict(LossConfig, ALL_TERMS)
    small = random_clip_batch(1, 4, 32, 2, torch.Generator().manual_seed(4))
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        terms = compute_losses(model(small), small, config, progress=0.9, iteration=135_000)
    assert all(torch.isfinite(v).all() and v.dtype == torch.float32 for v in terms.values())
    batch = random_clip_batch(2, 4, 48, 2, torch.Generator().manual_seed(5))
    optimiser = torch.optim.AdamW(model.parameters(), lr=5e-4)

    def step() -> float:
        out = model(batch, generator=torch.Generator().manual_seed(0))
        total = compute_losses(out, batch, config, progress=1.0, iteration=150_000, generator=torch.Generator().manual_seed(0))["total"]
        optimiser.zero_grad()
        total.backward()
        optimiser.step()
        return total.item()

    first = step()
    for _ in range(9):
        last = step()
    assert last < 0.8 * first, (first, last)


def replace_prob(config: ModelConfig, prob: float) -> ModelConfig:
    from dataclasses import replace

    return replace(config, deep_update_prob=prob)
