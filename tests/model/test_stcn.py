"""STCN network and training wrapper: shapes, state dicts, frozen BatchNorm, weight loading."""

import pytest
import torch

from components.config import LossConfig, ModelConfig, config_from_dict
from components.errors import ConfigError
from components.model import STCN, STCNTrainWrapper, build_train_wrapper
from components.model.resnet import FrozenBatchNorm2d, ResNetTrunk
from components.training.batch import random_clip_batch
from components.training.step import training_step


@pytest.mark.parametrize("preset", ["small", "stcn"])
@pytest.mark.parametrize("objects", [1, 2])
def test_inference_network_shapes(preset, objects):
    config = config_from_dict(ModelConfig, {"preset": preset})
    model = STCN(config).eval()
    frames = torch.rand(2, 3, 64, 96)
    with torch.no_grad():
        features = model.encode_key(frames)
        values = model.encode_value(frames, features.f16, torch.rand(2, objects, 64, 96))
        readout = model.read(features.key[:, :, None], values[:, :, :, None], features.key, top_k=20)
        logits, probs = model.segment(features, readout)
    assert features.key.shape == (2, 64, 4, 6)
    assert values.shape == (2, objects, config.value_dim, 4, 6)
    assert readout.shape == values.shape
    assert logits.shape == (2, objects + 1, 64, 96)
    assert probs.shape == (2, objects, 64, 96)
    assert torch.allclose(torch.softmax(logits, 1).sum(1), torch.ones(2, 64, 96), atol=1e-5)


def test_stcn_preset_has_the_paper_sizes():
    model = STCN(config_from_dict(ModelConfig, {"preset": "stcn"}))
    assert model.key_encoder.channels == (256, 512, 1024)
    assert model.key_proj.out_channels == 64
    assert model.value_encoder.trunk.conv1.in_channels == 5  # RGB + target + other objects
    assert model.value_encoder.fusion.block2.conv2.out_channels == 512


def test_training_wrapper_shapes_for_one_and_two_objects(small_config):
    model = STCNTrainWrapper(small_config)
    for objects in (1, 2):
        batch = random_clip_batch(2, 3, 64, objects, torch.Generator().manual_seed(objects))
        out = model(batch)
        assert out["logits"].shape == (2, 2, objects + 1, 64, 64)
        assert out["embed_a"].shape == out["embed_b"].shape == (2, 3, 64, 4, 4)
        assert out["embed_a"].dtype == torch.float32
        assert out["theta"].shape == (2, 2, 3)
    plain = model(batch, with_correspondence=False)
    assert set(plain) == {"logits", "object_probs"}


def test_inference_state_dict_has_no_head_g_and_loads_strictly(small_config):
    wrapper = STCNTrainWrapper(small_config)
    state = wrapper.inference_state_dict()
    assert not any("correspondence_head" in k for k in state)
    assert any("correspondence_head" in k for k in wrapper.state_dict())
    assert not any("correspondence_head" in k for k in STCN(small_config).state_dict())
    STCN(small_config).load_state_dict(state, strict=True)
    assert not any("pixel_mean" in k for k in state)  # normalisation constants are code, not weights


def test_single_object_value_encoder_takes_one_mask_channel():
    model = STCN(config_from_dict(ModelConfig, {"preset": "small", "single_object": True}))
    assert model.value_encoder.trunk.conv1.in_channels == 4
    frames = torch.rand(1, 3, 32, 32)
    feats = model.encode_key(frames)
    assert model.encode_value(frames, feats.f16, torch.rand(1, 1, 32, 32)).shape[1] == 1
    with pytest.raises(ValueError):
        model.encode_value(frames, feats.f16, torch.rand(1, 2, 32, 32))


def test_batchnorm_is_frozen_in_training_mode():
    model = STCNTrainWrapper(config_from_dict(ModelConfig, {"preset": "small", "batchnorm": "frozen"})).train()
    bn = model.key_encoder.bn1
    assert isinstance(bn, FrozenBatchNorm2d)
    before = bn.running_mean.clone(), bn.running_var.clone()
    batch = random_clip_batch(2, 3, 64, 2)
    model(batch)["logits"].sum().backward()
    assert torch.equal(bn.running_mean, before[0]) and torch.equal(bn.running_var, before[1])
    assert bn.weight.grad is not None  # the affine part still trains, as in STCN
    model.eval()
    with torch.no_grad():
        a = model(batch, with_correspondence=False)["logits"]
    model.train()
    with torch.no_grad():
        b = model(batch, with_correspondence=False)["logits"]
    assert torch.allclose(a, b)  # no train/eval difference anywhere


def test_batch_statistics_option_updates_running_stats_only_in_training(small_config):
    assert small_config.batchnorm == "batch"
    assert STCN(config_from_dict(ModelConfig, {"preset": "stcn"})).config.batchnorm == "frozen"
    model = STCNTrainWrapper(small_config).train()
    bn = model.key_encoder.bn1
    assert isinstance(bn, torch.nn.BatchNorm2d)
    before = bn.running_mean.clone()
    batch = random_clip_batch(2, 3, 64, 2)
    model(batch, with_correspondence=False)
    assert not torch.equal(bn.running_mean, before)
    model.eval()
    frozen = bn.running_mean.clone()
    with torch.no_grad():
        model(batch, with_correspondence=False)
    assert torch.equal(bn.running_mean, frozen)
    assert set(STCN(small_config).state_dict()) == set(model.inference_state_dict())


def _torchvision_style_state(arch: str, width: int = 64) -> dict:
    """A state dict with torchvision's full key set: our trunk's keys plus layer4 and fc."""
    state = {k: torch.randn_like(v.float()) if v.is_floating_point() else v for k, v in ResNetTrunk(arch, width=width).state_dict().items()}
    state["layer4.0.conv1.weight"] = torch.randn(8, 8, 1, 1)
    state["fc.weight"] = torch.randn(1000, 8)
    return state


def test_backbone_weights_load_from_a_file_and_an_fsspec_uri(tmp_path):
    import fsspec

    key_state = _torchvision_style_state("resnet18", 32)
    value_state = _torchvision_style_state("resnet18", 32)
    torch.save(key_state, tmp_path / "r18.pth")
    with fsspec.open("memory://weights/r18-value.pth", "wb") as handle:
        torch.save(value_state, handle)
    config = config_from_dict(
        ModelConfig,
        {"preset": "small", "backbone_weights": {"key_encoder": str(tmp_path / "r18.pth"), "value_encoder": "memory://weights/r18-value.pth"}},
    )
    model = STCN(config)
    assert torch.equal(model.key_encoder.layer3[1].conv2.weight, key_state["layer3.1.conv2.weight"])
    conv1 = model.value_encoder.trunk.conv1.weight
    assert torch.equal(conv1[:, :3], value_state["conv1.weight"])  # RGB filters copied
    assert conv1.shape[1] == 5
    # the mask channels are initialised as STCN's load_weights_sequential does: one orthogonal_ over them all
    extra = conv1[:, 3:].detach().reshape(conv1.shape[0], -1)  # 32, 2*7*7: orthonormal rows
    assert torch.allclose(extra @ extra.T, torch.eye(conv1.shape[0]), atol=1e-5)


def test_backbone_weights_of_the_wrong_shape_name_the_key(tmp_path):
    torch.save(_torchvision_style_state("resnet18", 64), tmp_path / "r18-full.pth")
    config = config_from_dict(ModelConfig, {"preset": "small", "backbone_weights": {"key_encoder": str(tmp_path / "r18-full.pth")}})
    with pytest.raises(ConfigError, match=r"conv1.weight|layer"):
        STCN(config)
    missing = config_from_dict(ModelConfig, {"preset": "small", "backbone_weights": {"key_encoder": str(tmp_path / "nope.pth")}})
    with pytest.raises(ConfigError, match="nope.pth"):
        STCN(missing)


@pytest.mark.parametrize("arch", ["resnet18", "resnet50"])
def test_output_stride_8_doubles_the_grid_with_the_same_parameters(arch):
    strided = ResNetTrunk(arch, width=16, norm="batch")
    dilated = ResNetTrunk(arch, width=16, norm="batch", output_stride=8)
    assert {k: v.shape for k, v in strided.state_dict().items()} == {k: v.shape for k, v in dilated.state_dict().items()}
    dilated.load_state_dict(strided.state_dict())  # ImageNet weights for the one load into the other
    features = dilated.eval()(torch.rand(1, 3, 64, 96))
    assert features.f8.shape[-2:] == features.f16.shape[-2:] == (8, 12)
    assert features.f4.shape[-2:] == (16, 24)
    assert all(c.stride == (1, 1) for c in dilated.layer3.modules() if isinstance(c, torch.nn.Conv2d))
    assert max(c.dilation[0] for c in dilated.layer3.modules() if isinstance(c, torch.nn.Conv2d)) == 2
    with pytest.raises(ValueError, match="output_stride"):
        ResNetTrunk(arch, output_stride=4)


@pytest.mark.parametrize("name", ["stcn", "xmem"])
def test_both_bases_train_and_read_at_output_stride_8(name):
    config = config_from_dict(ModelConfig, {"name": name, "preset": "small", "output_stride": 8})
    model = build_train_wrapper(config)
    optimiser = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], 1e-4)
    batch = random_clip_batch(2, 8 if name == "xmem" else 3, 64, 2, torch.Generator().manual_seed(0))
    values, _ = training_step(model, batch, config_from_dict(LossConfig, {"ocl_weight": 0.1}), 0.9, optimiser, step=0)
    assert all(torch.isfinite(torch.tensor(v)) for v in values.values()) and values["grad_norm"] > 0
    assert model.encode_key(torch.rand(1, 3, 64, 96)).key.shape[-2:] == (8, 12)
    with pytest.raises(ConfigError, match="output_stride"):
        config_from_dict(ModelConfig, {"output_stride": 32})


def test_upsample_block_projects_each_frames_skip_once_for_all_its_objects():
    """The skip convolution runs on the N frames, not N x objects, and gives what per-object copies give."""
    from components.model.blocks import UpsampleBlock

    torch.manual_seed(0)
    block = UpsampleBlock(skip_ch=6, up_ch=4, out_ch=5).eval()
    skip, up = torch.randn(2, 6, 8, 8), torch.randn(2 * 3, 4, 4, 4)  # 2 frames, 3 objects each
    seen = []
    block.skip_conv.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0].shape[0]))
    with torch.no_grad():
        shared = block(skip, up)
        per_object = block.out_block(block.skip_conv(skip.repeat_interleave(3, dim=0))
                                     + torch.nn.functional.interpolate(up, size=(8, 8), mode="bilinear"))
    assert seen[0] == 2 and shared.shape == (6, 5, 8, 8)
    torch.testing.assert_close(shared, per_object, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="not a whole number per frame"):
        block(skip, up[:5])
