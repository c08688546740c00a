"""ResNet-18/50 trunks with torchvision's parameter names, frozen BatchNorm, up to layer3.

BatchNorm is frozen (STCN's convention for ImageNet-initialised trunks) unless `norm="batch"`:
a frozen BatchNorm at random initialisation is the identity, i.e. a network with no
normalisation at all, which trains poorly from scratch (the CPU `small` preset uses "batch").

Keeping torchvision's names (`conv1`, `bn1`, `layer1.0.conv1`, `layer1.0.downsample.0`, ...) lets a
user load an ImageNet state dict they already have; nothing is downloaded. `width` scales every
stage (64 = torchvision) so small CPU presets can share the code. `in_channels` > 3 adds mask
inputs to the first conv, as STCN's value encoder needs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


class FrozenBatchNorm2d(nn.Module):
    """BatchNorm that always normalises with its stored statistics (STCN trains in eval mode).

    The affine weight and bias stay trainable; running statistics never change. Buffer names
    match `nn.BatchNorm2d` so torchvision state dicts load unchanged.
    """

    def __init__(self, num_features: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # the native eval-mode kernel: one pass over x (a broadcast multiply-add is two, plus a temporary,
        # ~10x slower on a CPU at 480p), fp32 statistics with bf16 activations, gradients to weight and bias
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, training=False,
                            momentum=0.0, eps=self.eps)


def _conv3x3(in_ch: int, out_ch: int, stride: int = 1, dilation: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=dilation, dilation=dilation, bias=False)


def _conv1x1(in_ch: int, out_ch: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False)


NORMS: dict[str, type[nn.Module]] = {"frozen": FrozenBatchNorm2d, "batch": nn.BatchNorm2d}


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_ch: int, width: int, stride: int = 1, downsample: nn.Module | None = None,
                 norm: type[nn.Module] = FrozenBatchNorm2d, dilation: tuple[int, int] = (1, 1)) -> None:
        super().__init__()
        self.conv1 = _conv3x3(in_ch, width, stride, dilation[0])
        self.bn1 = norm(width)
        self.conv2 = _conv3x3(width, width, dilation=dilation[1])
        self.bn2 = norm(width)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """torchvision's v1.5 bottleneck: the stride sits on the 3x3 conv."""

    expansion = 4

    def __init__(self, in_ch: int, width: int, stride: int = 1, downsample: nn.Module | None = None,
                 norm: type[nn.Module] = FrozenBatchNorm2d, dilation: tuple[int, int] = (1, 1)) -> None:
        super().__init__()
        self.conv1 = _conv1x1(in_ch, width)
        self.bn1 = norm(width)
        self.conv2 = _conv3x3(width, width, stride, dilation[0])  # the block's one 3x3: the first entry
        self.bn2 = norm(width)
        self.conv3 = _conv1x1(width, width * self.expansion)
        self.bn3 = norm(width * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


_ARCHITECTURES: dict[str, tuple[type[nn.Module], tuple[int, int, int]]] = {
    "resnet18": (BasicBlock, (2, 2, 2)),
    "resnet50": (Bottleneck, (3, 4, 6)),
}


@dataclass(frozen=True)
class TrunkFeatures:
    f4: torch.Tensor  # N, C4, H/4, W/4
    f8: torch.Tensor  # N, C8, H/8, W/8
    f16: torch.Tensor  # N, C16, H/16, W/16


class ResNetTrunk(nn.Module):
    """A ResNet cut after layer3; returns the stride-4, -8 and -16 feature maps (`f16`).

    `output_stride=8` keeps layer3 at stride 8 and dilates its 3x3 convolutions instead (DeepLab's
    trick, torchvision's `replace_stride_with_dilation`): `f16` then has twice the resolution, the
    parameters and their names stay the same, so ImageNet weights still load."""

    def __init__(self, arch: str = "resnet50", in_channels: int = 3, width: int = 64, norm: str = "frozen",
                 output_stride: int = 16) -> None:
        super().__init__()
        if arch not in _ARCHITECTURES:
            raise ValueError(f"unknown backbone {arch!r} (choose from {sorted(_ARCHITECTURES)})")
        if output_stride not in (8, 16):
            raise ValueError(f"output_stride must be 8 or 16, got {output_stride}")
        block, depths = _ARCHITECTURES[arch]
        self.arch, self.in_channels, self.width = arch, in_channels, width
        self._norm = NORMS[norm]
        self.conv1 = nn.Conv2d(in_channels, width, 7, stride=2, padding=3, bias=False)
        self.bn1 = self._norm(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self._in = width
        self.layer1 = self._make_layer(block, width, depths[0], stride=1)
        self.layer2 = self._make_layer(block, width * 2, depths[1], stride=2)
        self.output_stride = output_stride
        self.layer3 = self._make_layer(block, width * 4, depths[2], stride=2, dilate=output_stride == 8)
        self.channels = (width * block.expansion, width * 2 * block.expansion, width * 4 * block.expansion)
        self._init_weights()

    def _make_layer(self, block: type[nn.Module], width: int, depth: int, stride: int, dilate: bool = False) -> nn.Sequential:
        """`dilate`: stride 1 and dilation `stride` in place of the downsampling; the first 3x3 keeps
        dilation 1 (it would have been the strided one), every later 3x3 is dilated."""
        downsample = None
        out_ch = width * block.expansion
        first, rest = (1, 1), (1, 1)
        if dilate:
            first, rest, stride = (1, stride), (stride, stride), 1
            if block is Bottleneck:  # one 3x3 per block
                first = (1, 1)
        if stride != 1 or self._in != out_ch:
            downsample = nn.Sequential(_conv1x1(self._in, out_ch, stride), self._norm(out_ch))
        layers = [block(self._in, width, stride, downsample, norm=self._norm, dilation=first)]
        self._in = out_ch
        layers += [block(self._in, width, norm=self._norm, dilation=rest) for _ in range(depth - 1)]
        return nn.Sequential(*layers)

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        # zero-init the last BN of each residual branch, as torchvision's option does: blocks start as identity
        for module in self.modules():
            if isinstance(module, Bottleneck):
                nn.init.zeros_(module.bn3.weight)
            elif isinstance(module, BasicBlock):
                nn.init.zeros_(module.bn2.weight)

    def freeze(self, stages: int) -> None:
        """Stop gradients to the first `stages` parts from the input (1: stem, 2: + layer1, ... 4: + layer3),
        detectron2's FREEZE_AT: their weights stay put and their backward pass is skipped. BatchNorm keeps
        its mode (a `batch` norm still normalises with batch statistics)."""
        parts = [(self.conv1, self.bn1), (self.layer1,), (self.layer2,), (self.layer3,)]
        if not 0 <= stages <= len(parts):
            raise ValueError(f"freeze stages must lie in [0, {len(parts)}], got {stages}")
        for group in parts[:stages]:
            for module in group:
                module.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> TrunkFeatures:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        f4 = self.layer1(x)
        f8 = self.layer2(f4)
        f16 = self.layer3(f8)
        return TrunkFeatures(f4=f4, f8=f8, f16=f16)


def freeze_trunks(model: nn.Module, stages: int) -> int:
    """`ResNetTrunk.freeze(stages)` on every trunk inside `model` (key and value encoders); returns how many
    parameter elements stopped training."""
    before = sum(p.numel() for p in model.parameters() if p.requires_grad)
    for module in model.modules():
        if isinstance(module, ResNetTrunk):
            module.freeze(stages)
    return before - sum(p.numel() for p in model.parameters() if p.requires_grad)
