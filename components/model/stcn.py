"""STCN, the inference network (METHOD_REFERENCE §5.1): key encoder, value encoder, memory read, decoder.

The network holds no training-only parts: the correspondence head g lives in the training wrapper,
so this module's state dict is exactly what inference loads. Frames enter as RGB in [0, 1];
ImageNet normalisation happens here so loaders and inference can never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from components.config.schema import ModelConfig
from components.model.aggregate import soft_aggregate
from components.model.blocks import FeatureFusionBlock, ResBlock, UpsampleBlock
from components.model.encoders import MatchingNetwork
from components.model import memory_read


@dataclass(frozen=True)
class KeyFeatures:
    """What the key encoder gives for a batch of frames; `key` is the 64-d matching key."""

    key: torch.Tensor  # N, Ck, H/16, W/16
    f16: torch.Tensor  # N, C16, H/16, W/16
    f8: torch.Tensor  # N, C8, H/8, W/8
    f4: torch.Tensor  # N, C4, H/4, W/4


class Decoder(nn.Module):
    """Memory readout + query f16 -> stride 16 -> 8 -> 4 -> one logit map per object at full size."""

    def __init__(self, channels: tuple[int, int, int], value_dim: int, dims: tuple[int, int, int], entry: str) -> None:
        super().__init__()
        c4, c8, c16 = channels
        d16, d8, d4 = dims
        if entry == "fusion":  # released correspondence code: FeatureFusionBlock on [f16, readout]
            self.key_comp = None
            self.fuse = FeatureFusionBlock(c16 + value_dim, d16)
        else:  # original STCN: 3x3 key compression, concatenation, one ResBlock
            self.key_comp = nn.Conv2d(c16, value_dim, 3, padding=1)
            self.fuse = ResBlock(2 * value_dim, d16)
        self.up_16_8 = UpsampleBlock(c8, d16, d8)
        self.up_8_4 = UpsampleBlock(c4, d8, d4)
        self.pred = nn.Conv2d(d4, 1, 3, padding=1)

    def forward(self, features: KeyFeatures, readout: torch.Tensor, out_size: tuple[int, int]) -> torch.Tensor:
        """readout: N,O,Cv,h,w  ->  object logits N,O,H,W."""
        n, o = readout.shape[:2]
        query = features.f16 if self.key_comp is None else self.key_comp(features.f16)
        x = self.fuse.forward_shared(query, readout.flatten(0, 1))  # the query part once per frame
        x = self.up_16_8(features.f8, x)
        x = self.up_8_4(features.f4, x)
        x = self.pred(F.relu(x))
        x = F.interpolate(x, size=out_size, mode="bilinear", align_corners=False)
        return x.view(n, o, *out_size)


class STCN(MatchingNetwork):
    """The inference network: encode keys and values, read memory, decode, aggregate objects."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        self.key_proj = nn.Conv2d(self.key_f16_channels, config.key_dim, 3, padding=1)
        nn.init.orthogonal_(self.key_proj.weight)
        nn.init.zeros_(self.key_proj.bias)
        self.value_encoder = self._build_value_encoder()
        self.decoder = Decoder(self.key_encoder.channels, config.value_dim, config.decoder_dims, config.decoder_entry)
        self._load_backbone_weights()

    def encode_key(self, frames: torch.Tensor) -> KeyFeatures:
        """frames: N,3,H,W in [0, 1] with H, W multiples of 16."""
        feats = self.key_encoder(self.normalise(frames))
        return KeyFeatures(key=self.key_proj(feats.f16), f16=feats.f16, f8=feats.f8, f4=feats.f4)

    def encode_value(self, frames: torch.Tensor, key_f16: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """frames: N,3,H,W; key_f16: N,C16,h,w; masks: N,O,H,W soft or hard  ->  values N,O,Cv,h,w."""
        return self.value_encoder(self.normalise(frames), key_f16, masks.to(frames.dtype))

    def read(
        self, memory_keys: torch.Tensor, memory_values: torch.Tensor, query_key: torch.Tensor, top_k: int | None = None
    ) -> torch.Tensor:
        """memory_keys: B,Ck,T,h,w; memory_values: B,O,Cv,T,h,w; query_key: B,Ck,h,w -> readout B,O,Cv,h,w."""
        return memory_read.read(memory_keys, memory_values, query_key, top_k)

    def segment(
        self, features: KeyFeatures, readout: torch.Tensor, selector: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Decode every object and aggregate: (logits B,O+1,H,W over {bg, objects}, object probs B,O,H,W)."""
        out_size = (features.f4.shape[-2] * 4, features.f4.shape[-1] * 4)
        object_probs = torch.sigmoid(self.decoder(features, readout, out_size))
        if selector is not None:
            object_probs = object_probs * selector[:, :, None, None].to(object_probs.dtype)
        # aggregation in fp32: its 1e-7 clamp does not survive bf16
        return soft_aggregate(object_probs.float()), object_probs
