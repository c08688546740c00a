"""The inference form of a network: BatchNorm folded into its convolution, channels-last memory.

A frozen (or eval-mode) BatchNorm after a bias-free convolution is an affine map per output channel;
multiplying it into the convolution's weight and bias removes one full pass over every feature map of
the ResNet trunks (~40% of their layers). Channels-last (NHWC) is the layout oneDNN's CPU and cuDNN's
tensor-core convolutions run natively, so no layout reorder surrounds each convolution. Values change
only by float rounding. The caller's network is left untouched: the engines get a folded copy.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from components.model.resnet import BasicBlock, Bottleneck, FrozenBatchNorm2d, ResNetTrunk

NORMS = (FrozenBatchNorm2d, nn.BatchNorm2d)
_PAIRS: dict[type[nn.Module], tuple[tuple[str, str], ...]] = {
    ResNetTrunk: (("conv1", "bn1"),),
    BasicBlock: (("conv1", "bn1"), ("conv2", "bn2")),
    Bottleneck: (("conv1", "bn1"), ("conv2", "bn2"), ("conv3", "bn3")),
}


MARK = "_corrvos_inference_form"  # set on a form this module made, with its channels_last


def inference_form(network: nn.Module, channels_last: bool = True) -> nn.Module:
    """A copy of `network` in eval mode with every trunk BatchNorm folded, optionally in channels-last memory.

    A network that already is such a form is returned as it is, so a served model built once at load
    time is not copied again by every engine made from it (the form is never trained or changed).
    """
    if getattr(network, MARK, None) == channels_last:
        return network
    folded = copy.deepcopy(network).eval()
    fold_batch_norms(folded)
    folded.requires_grad_(False)
    if channels_last:
        folded = folded.to(memory_format=torch.channels_last)
    setattr(folded, MARK, channels_last)
    return folded


def fold_batch_norms(network: nn.Module) -> int:
    """Fold, in place, each ResNet BatchNorm into the convolution before it (the norm becomes an Identity);
    returns how many were folded. Only for inference: the norms' statistics must not change afterwards."""
    folded = 0
    for module in list(network.modules()):
        for conv_name, norm_name in _PAIRS.get(type(module), ()):
            folded += _fold_pair(module, conv_name, norm_name)
        downsample = getattr(module, "downsample", None)
        if isinstance(module, (BasicBlock, Bottleneck)) and isinstance(downsample, nn.Sequential) \
                and len(downsample) == 2 and isinstance(downsample[1], NORMS):
            folded += _fold_pair(downsample, "0", "1")
    return folded


def _fold_pair(parent: nn.Module, conv_name: str, norm_name: str) -> int:
    conv, norm = getattr(parent, conv_name), getattr(parent, norm_name)
    if not isinstance(conv, nn.Conv2d) or not isinstance(norm, NORMS):
        return 0
    if isinstance(norm, nn.BatchNorm2d) and (norm.training or not norm.track_running_stats):
        raise ValueError(f"cannot fold {norm_name}: a BatchNorm in training mode normalises with batch statistics")
    with torch.no_grad():
        scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
        shift = norm.bias - norm.running_mean * scale
        if conv.bias is not None:
            shift = shift + conv.bias * scale
        conv.weight.mul_(scale.reshape(-1, 1, 1, 1).to(conv.weight.dtype))
        conv.bias = nn.Parameter(shift.to(conv.weight.dtype))
    setattr(parent, norm_name, nn.Identity())
    return 1
