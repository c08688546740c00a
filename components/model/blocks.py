"""STCN's small building blocks: pre-activation ResBlock, CBAM, feature fusion, upsampling."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


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


class UpsampleBlock(nn.Module):
    """Upsample x2, add a 3x3-projected skip connection, then a ResBlock to `out_ch`.

    The skip features are a frame's (N of them); the maps to upsample may be several per frame (N*K,
    one per object, frame-major): the skip is projected once per frame and broadcast to its objects,
    as STCN's and XMem's decoders do, not once per object.
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
        x = upsampled.view(n, -1, *upsampled.shape[1:]) + projected[:, None]  # N, K, Cu, H, W
        return self.out_block(x.flatten(0, 1))
