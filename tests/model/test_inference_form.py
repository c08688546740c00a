"""The engines' inference form (BatchNorm folded, channels-last) and the fusion blocks' shared-input path
compute what the plain network computes, to float rounding, and leave the caller's network untouched."""

from __future__ import annotations

import copy

import pytest
import torch

from components.config import ModelConfig, config_from_dict
from components.model import build_network
from components.model.blocks import FeatureFusionBlock, ResBlock, UpsampleBlock, shared_input_conv, summed_input_conv
from components.model.inference_form import fold_batch_norms, inference_form
from components.model.resnet import ResNetTrunk


def _randomise_norms(module: torch.nn.Module, seed: int = 0) -> None:
    """Non-trivial statistics and affine terms, so a fold that dropped one of them shows."""
    generator = torch.Generator().manual_seed(seed)
    for name, buffer in module.named_buffers():
        if name.endswith("running_mean"):
            buffer.copy_(torch.randn(buffer.shape, generator=generator) * 0.1)
        elif name.endswith("running_var"):
            buffer.copy_(torch.rand(buffer.shape, generator=generator) + 0.5)
    with torch.no_grad():
        for name, parameter in module.named_parameters():
            if ".bn" in name or name.startswith("bn") or "downsample.1" in name:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.2 + (1.0 if name.endswith("weight") else 0.0))


@pytest.mark.parametrize("arch,norm", [("resnet18", "frozen"), ("resnet50", "frozen"), ("resnet18", "batch")])
def test_folded_trunk_matches_the_plain_one(arch, norm):
    torch.manual_seed(0)
    trunk = ResNetTrunk(arch, width=16, norm=norm).eval()
    _randomise_norms(trunk)
    x = torch.randn(2, 3, 64, 96)
    folded = copy.deepcopy(trunk)
    count = fold_batch_norms(folded)
    blocks, norms_per_block, shortcuts = {"resnet18": (6, 2, 2), "resnet50": (13, 3, 3)}[arch]  # layer1-3
    assert count == 1 + blocks * norms_per_block + shortcuts  # the stem, every block, the downsample shortcuts
    assert not any(isinstance(m, (torch.nn.BatchNorm2d,)) for m in folded.modules())
    with torch.no_grad():
        want, got = trunk(x), folded(x)
    for name in ("f4", "f8", "f16"):
        a, b = getattr(got, name), getattr(want, name)
        assert (a - b).abs().max() <= 1e-5 * b.abs().max(), name  # float rounding, relative to the map's scale


def test_a_batchnorm_in_training_mode_is_not_folded():
    trunk = ResNetTrunk("resnet18", width=8, norm="batch").train()
    with pytest.raises(ValueError, match="training mode"):
        fold_batch_norms(trunk)


@pytest.mark.parametrize("name", ["stcn", "xmem"])
def test_inference_form_leaves_the_network_alone_and_encodes_alike(name):
    torch.manual_seed(0)
    network = build_network(config_from_dict(ModelConfig, {"preset": "small", "name": name})).eval()
    _randomise_norms(network)
    before = {k: v.clone() for k, v in network.state_dict().items()}
    fast = inference_form(network)
    assert all(torch.equal(before[k], v) for k, v in network.state_dict().items())  # untouched
    assert any(isinstance(m, torch.nn.BatchNorm2d) or type(m).__name__ == "FrozenBatchNorm2d" for m in network.modules())
    assert not fast.training and not any(p.requires_grad for p in fast.parameters())
    frames = torch.rand(1, 3, 64, 96)
    masks = torch.rand(1, 3, 64, 96)
    with torch.inference_mode():
        want = network.encode_key(frames)
        got = fast.encode_key(frames.contiguous(memory_format=torch.channels_last))
        torch.testing.assert_close(got.key, want.key, rtol=1e-4, atol=1e-4)
        assert got.f16.is_contiguous(memory_format=torch.channels_last)
        if name == "stcn":
            torch.testing.assert_close(fast.encode_value(frames, got.f16, masks),
                                       network.encode_value(frames, want.f16, masks), rtol=1e-4, atol=1e-4)


def test_an_inference_form_is_not_copied_again():
    """Engines made from a form built once (the served model's) share it; a plain network is always copied."""
    from components.config import InferenceConfig
    from components.inference import propagator_for

    network = build_network(config_from_dict(ModelConfig, {"preset": "small"})).eval()
    fast = inference_form(network)
    assert inference_form(fast) is fast
    assert inference_form(fast, channels_last=False) is not fast  # a different form is made, not assumed
    assert propagator_for(fast, InferenceConfig()).model is fast
    assert propagator_for(network, InferenceConfig()).model is not network


@pytest.mark.parametrize("objects", [1, 3])
@pytest.mark.parametrize("block_type", [ResBlock, FeatureFusionBlock])
def test_shared_input_path_equals_the_concatenated_one_in_value_and_gradient(block_type, objects):
    torch.manual_seed(0)
    block = block_type(24 + 8, 16)
    shared = torch.randn(2, 24, 6, 10, requires_grad=True)
    own = torch.randn(2 * objects, 8, 6, 10, requires_grad=True)
    want = block(torch.cat([shared.repeat_interleave(objects, dim=0), own], dim=1))
    (want * torch.linspace(-1, 1, want.numel()).view_as(want)).sum().backward()
    grads_want = [shared.grad.clone(), own.grad.clone(), block.conv1.weight.grad.clone()
                  if block_type is ResBlock else block.block1.conv1.weight.grad.clone()]
    shared.grad = own.grad = None
    block.zero_grad()
    got = block.forward_shared(shared, own)
    (got * torch.linspace(-1, 1, got.numel()).view_as(got)).sum().backward()
    grads_got = [shared.grad, own.grad, block.conv1.weight.grad if block_type is ResBlock else block.block1.conv1.weight.grad]
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    for g, w in zip(grads_got, grads_want):
        torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-4)  # sums taken in another order


def _count_conv2d(monkeypatch) -> list[tuple[int, int, int]]:
    """From now on, record (batch, out channels, in channels) of every F.conv2d call, in call order."""
    seen: list[tuple[int, int, int]] = []
    original = torch.nn.functional.conv2d

    def counting(x, weight, *args, **kwargs):
        seen.append((x.shape[0], weight.shape[0], weight.shape[1]))
        return original(x, weight, *args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "conv2d", counting)
    return seen


def test_shared_input_conv_does_the_frame_part_once(monkeypatch):
    """The shared part is convolved at the frame batch size, not once per object."""
    conv = torch.nn.Conv2d(12, 4, 3, padding=1)
    seen = _count_conv2d(monkeypatch)
    shared_input_conv(conv, torch.randn(2, 9, 5, 5), torch.randn(8, 3, 5, 5))
    assert [(batch, in_ch) for batch, _, in_ch in seen] == [(2, 9), (8, 3)]


def test_shared_input_conv_refuses_a_mismatch():
    conv = torch.nn.Conv2d(12, 4, 3, padding=1)
    with pytest.raises(ValueError, match="input channels"):
        shared_input_conv(conv, torch.randn(2, 9, 5, 5), torch.randn(8, 4, 5, 5))
    with pytest.raises(ValueError, match="whole number"):
        shared_input_conv(conv, torch.randn(3, 9, 5, 5), torch.randn(8, 3, 5, 5))


@pytest.mark.parametrize("objects", [1, 3])
@pytest.mark.parametrize("in_ch,out_ch", [(12, 8), (8, 8)])  # a conv shortcut, and the identity one
def test_summed_input_path_equals_the_broadcast_sum_in_value_and_gradient(in_ch, out_ch, objects):
    torch.manual_seed(0)
    block = ResBlock(in_ch, out_ch)
    shared = torch.randn(2, in_ch, 6, 10, requires_grad=True)
    own = torch.randn(2 * objects, in_ch, 6, 10, requires_grad=True)
    weights = None
    results = []
    for path in ("plain", "summed"):
        shared.grad = own.grad = None
        block.zero_grad()
        if path == "plain":
            out = block(own + shared.repeat_interleave(objects, dim=0))
        else:
            out = block.forward_summed(shared, own)
        weights = torch.linspace(-1, 1, out.numel()).view_as(out) if weights is None else weights
        (out * weights).sum().backward()
        shortcut = block.downsample.weight.grad.clone() if block.downsample is not None else None
        results.append((out.detach(), shared.grad.clone(), own.grad.clone(), shortcut))
    (want, *grads_want), (got, *grads_got) = results
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    for g, w in zip(grads_got, grads_want):
        if w is not None:
            torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-4)


def test_upsample_block_convolves_the_skip_share_of_its_shortcut_once_per_frame(monkeypatch):
    torch.manual_seed(0)
    block = UpsampleBlock(skip_ch=6, up_ch=12, out_ch=8).eval()
    skip, up = torch.randn(2, 6, 8, 8), torch.randn(2 * 3, 12, 4, 4)
    with torch.no_grad():
        upsampled = torch.nn.functional.interpolate(up, size=(8, 8), mode="bilinear", align_corners=False)
        want = block.out_block(upsampled + block.skip_conv(skip).repeat_interleave(3, dim=0))
    seen = _count_conv2d(monkeypatch)
    with torch.no_grad():
        got = block(skip, up)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    shortcut = [batch for batch, out_ch, in_ch in seen if (out_ch, in_ch) == (8, 12) and batch in (2, 6)]
    # conv1 and the shortcut take 12 channels to 8: conv1 on the 6 object maps, the shortcut on 6 + on 2 frames
    assert sorted(shortcut) == [2, 6, 6], seen


def test_summed_input_conv_refuses_a_mismatch():
    conv = torch.nn.Conv2d(4, 4, 3, padding=1)
    with pytest.raises(ValueError, match="whole number"):
        summed_input_conv(conv, torch.randn(3, 4, 5, 5), torch.randn(8, 4, 5, 5))
    with pytest.raises(ValueError, match="same-shaped"):
        summed_input_conv(conv, torch.randn(2, 4, 5, 5), torch.randn(8, 4, 6, 5))
