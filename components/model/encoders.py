"""What STCN and XMem share: ImageNet input normalisation, the key trunk, the value encoder, trunk weights.

`MatchingNetwork` builds those parts in the order both networks always built them, so parameter
names, parameter order and the seeded initialisation are unchanged by the sharing: old checkpoints
and optimiser states load as before.
"""

from __future__ import annotations

import torch
from torch import nn

from components.config.schema import ModelConfig
from components.model.blocks import FeatureFusionBlock
from components.model.resnet import ResNetTrunk
from components.model.weights import load_trunk_weights

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ValueEncoder(nn.Module):
    """ResNet on RGB + target mask (+ other-objects mask), fused with the key encoder's f16."""

    def __init__(self, arch: str, width: int, mask_channels: int, key_f16_channels: int, value_dim: int,
                 norm: str = "frozen", output_stride: int = 16) -> None:
        super().__init__()
        self.mask_channels = mask_channels
        self.trunk = ResNetTrunk(arch, in_channels=3 + mask_channels, width=width, norm=norm, output_stride=output_stride)
        self.fusion = FeatureFusionBlock(key_f16_channels + self.trunk.channels[2], value_dim)

    def forward(self, image: torch.Tensor, key_f16: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """image: N,3,H,W (normalised); key_f16: N,C,h,w; masks: N,O,H,W  ->  values N,O,Cv,h,w."""
        n, o = masks.shape[:2]
        target = masks.reshape(n * o, 1, *masks.shape[-2:])
        inputs = [image.repeat_interleave(o, dim=0), target]
        if self.mask_channels == 2:
            others = (masks.sum(dim=1, keepdim=True) - masks).clamp(0, 1)
            inputs.append(others.reshape(n * o, 1, *masks.shape[-2:]))
        elif o != 1:
            raise ValueError(f"a single-object value encoder got {o} objects")
        f16 = self.trunk(torch.cat(inputs, dim=1)).f16
        fused = self.fusion.forward_shared(key_f16, f16)  # the key f16 part once per frame
        return fused.view(n, o, *fused.shape[1:])


class MatchingNetwork(nn.Module):
    """Base of the matching networks: normalisation buffers and the key trunk on construction;
    subclasses add their key head, then call `_build_value_encoder` and, last, `_load_backbone_weights`."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.register_buffer("pixel_mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.key_encoder = ResNetTrunk(config.key_backbone, in_channels=3, width=config.backbone_width,
                                       norm=config.batchnorm, output_stride=config.output_stride)

    @property
    def key_f16_channels(self) -> int:
        """Channels of the key trunk's stride-16 map (the key head's and the value fusion's input)."""
        return self.key_encoder.channels[2]

    def _build_value_encoder(self) -> ValueEncoder:
        """The value encoder: one mask channel for single-object (pretraining) models, two otherwise."""
        config = self.config
        mask_channels = 1 if config.single_object else 2
        return ValueEncoder(config.value_backbone, config.backbone_width, mask_channels, self.key_f16_channels,
                            config.value_dim, config.batchnorm, config.output_stride)

    def _load_backbone_weights(self) -> None:
        """ImageNet (torchvision-format) weights into both trunks, from the files or URIs the config names."""
        weights = self.config.backbone_weights
        if weights.key_encoder:
            load_trunk_weights(self.key_encoder, weights.key_encoder)
        if weights.value_encoder:
            load_trunk_weights(self.value_encoder.trunk, weights.value_encoder)

    def normalise(self, frames: torch.Tensor) -> torch.Tensor:
        """RGB in [0, 1] -> ImageNet-normalised input."""
        return (frames - self.pixel_mean.to(frames.dtype)) / self.pixel_std.to(frames.dtype)
