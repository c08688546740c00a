"""STCN's small building blocks: pre-activation ResBlock, CBAM, feature fusion, upsampling."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def shared_input_conv(conv: nn.Conv2d, shared: torch.Tensor, own: torch.Tensor) -> torch.Tensor:
    """`conv` on [shared, own] concatenated along channels, the shared part repeated for each of a frame's
    objects, with that part convolved once per frame: a zero-padded convolution is linear in its input
    channels. shared: N,Cs,h,w (per frame); own: N*K,Co,h,w (frame-major)  ->  N*K,Cout,h,w.

    The frame-level part of STCN's and XMem's fusion inputs (the key f16 or its projection) is 2/3 to 4/5 of
    their channels, so with K objects this does about (Cs + K*Co) / (K*(Cs + Co)) of the work."""
    n, cs = shared.shape[:2]
    if own.shape[0] % n or cs + own.shape[1] != conv.in_channels:
        raise ValueError(f"shared {tuple(shared.shape)} and own {tuple(own.shape)} do not make {conv.in_channels} "
                         f"input channels for a whole number of objects per frame")
    args = (conv.stride, conv.padding, conv.dilation)
    frame_part = F.conv2d(shared, conv.weight[:, :cs], conv.bias, *args)  # N, Cout, h, w
    object_part = F.conv2d(own, conv.weight[:, cs:], None, *args)  # N*K, Cout, h, w
    return _add_per_frame(object_part, frame_part)


def summed_input_conv(conv: nn.Conv2d, shared: torch.Tensor, own: torch.Tensor) -> torch.Tensor:
    """`conv` on own + shared (the frame's map added to each of its objects') with the shared map convolved
    once per frame: a zero-padded convolution is linear in its input. shared: N,C,h,w; own: N*K,C,h,w.

    The decoders' upsampling blocks add a frame's projected skip features to each object's upsampled map;
    where the block's shortcut is a convolution (no ReLU before it), this splits it."""
    n = shared.shape[0]
    if own.shape[0] % n or shared.shape[1:] != own.shape[1:]:
        raise ValueError(f"shared {tuple(shared.shape)} and own {tuple(own.shape)}: not a whole number of "
                         f"same-shaped maps per frame")
    args = (conv.stride, conv.padding, conv.dilation)
    return _add_per_frame(F.conv2d(own, conv.weight, None, *args), F.conv2d(shared, conv.weight, conv.bias, *args))


def _add_per_frame(object_part: torch.Tensor, frame_part: torch.Tensor) -> torch.Tensor:
    """object_part N*K,C,h,w (frame-major) + frame_part N,C,h,w broadcast to each of its frame's K maps."""
    n = frame_part.shape[0]
    summed = object_part.view(n, -1, *object_part.shape[1:]).float() + frame_part[:, None].float()
    return summed.flatten(0, 1).to(object_part.dtype)  # one rounding, as a single convolution's output has


class ResBlock(nn.Module):
    """Two 3x3 convs with pre-activation ReLU; a 3x3 conv shortcut when the width changes."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1)
        self.downsample = nn.Conv2d(in_ch, out_ch, 3, padding=1) if in_ch != out_ch else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.conv1(F.relu(x))
        r = self.conv2(F.relu(r))
        shortcut = x if self.downsample is None else self.downsample(x)
        return shortcut + r

    def forward_shared(self, shared: torch.Tensor, own: torch.Tensor) -> torch.Tensor:
        """`forward` on [shared repeated per object, own] without repeating `shared` (`shared_input_conv`)."""
        if self.downsample is None:  # the identity shortcut needs the whole input anyway
            return self.forward(torch.cat([shared.repeat_interleave(own.shape[0] // shared.shape[0], dim=0), own], 1))
        r = shared_input_conv(self.conv1, F.relu(shared), F.relu(own))
        r = self.conv2(F.relu(r))
        return shared_input_conv(self.downsample, shared, own) + r

    def forward_summed(self, shared: torch.Tensor, own: torch.Tensor) -> torch.Tensor:
        """`forward` on own + shared (shared N,C,h,w added to each of its frame's maps in own N*K,C,h,w);
        the conv shortcut, which no ReLU precedes, convolves `shared` once per frame (`summed_input_conv`)."""
        n = shared.shape[0]
        x = (own.view(n, -1, *own.shape[1:]) + shared[:, None]).flatten(0, 1)
        r = self.conv2(F.relu(self.conv1(F.relu(x))))
        shortcut = x if self.downsample is None else summed_input_conv(self.downsample, shared, own)
        return shortcut + r


class ChannelGate(nn.Module):
    """CBAM channel attention from average- and max-pooled descriptors through a shared MLP."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.mlp = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        attention = self.mlp(x.mean(dim=(2, 3))) + self.mlp(x.amax(dim=(2, 3)))
        return x * torch.sigmoid(attention)[:, :, None, None]


class SpatialGate(nn.Module):
    """CBAM spatial attention: a 7x7 conv over the channel-wise max and mean maps."""

    def __init__(self, kernel_size: int = 7) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([x.amax(dim=1, keepdim=True), x.mean(dim=1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.conv(pooled))


class CBAM(nn.Module):
    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        self.channel_gate = ChannelGate(channels, reduction)
        self.spatial_gate = SpatialGate()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.spatial_gate(self.channel_gate(x))


class FeatureFusionBlock(nn.Module):
    """ResBlock -> CBAM (added residually) -> ResBlock; fuses concatenated feature maps."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.block1 = ResBlock(in_ch, out_ch)
        self.attention = CBAM(out_ch)
        self.block2 = ResBlock(out_ch, out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.block1(x)
        x = x + self.attention(x)
        return self.block2(x)

    def forward_shared(self, shared: torch.Tensor, own: torch.Tensor) -> torch.Tensor:
        """`forward` on [shared repeated per object, own]: shared N,Cs,h,w; own N*K,Co,h,w -> N*K,out,h,w."""
        x = self.block1.forward_shared(shared, own)
        x = x + self.attention(x)
        return self.block2(x)


class UpsampleBlock(nn.Module):
    """Upsample x2, add a 3x3-projected skip connection, then a ResBlock to `out_ch`.

    The skip features are a frame's (N of them); the maps to upsample may be several per frame (N*K,
    one per object, frame-major): the skip is projected once per frame and broadcast to its objects,
    as STCN's and XMem's decoders do, not once per object; so is the ResBlock's conv shortcut's share
    of it (the official decoders run that shortcut on every object's sum).
    """

    def __init__(self, skip_ch: int, up_ch: int, out_ch: int) -> None:
        super().__init__()
        self.skip_conv = nn.Conv2d(skip_ch, up_ch, 3, padding=1)
        self.out_block = ResBlock(up_ch, out_ch)

    def forward(self, skip: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
        """skip: N,Cs,H,W; up: N*K,Cu,h,w  ->  N*K,out_ch,H,W."""
        n = skip.shape[0]
        if up.shape[0] % n:
            raise ValueError(f"{up.shape[0]} maps to upsample for {n} skip maps: not a whole number per frame")
        projected = self.skip_conv(skip)  # N, Cu, H, W
        upsampled = F.interpolate(up, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.out_block.forward_summed(projected, upsampled)  # on upsampled + projected, per object
