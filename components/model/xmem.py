"""XMem, the inference network (METHOD_REFERENCE §5.2): STCN's encoders, keys with shrinkage and
selection, anisotropic L2 memory reads, and a sensory memory (a per-object hidden state at stride 16)
written by the value encoder on deep updates and by the decoder on every frame.

Like `STCN`, it holds no training-only parts (head g lives in the training wrapper), takes RGB in
[0, 1] and normalises inside, and soft-aggregates objects in fp32.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from components.config.schema import ModelConfig
from components.model.aggregate import soft_aggregate
from components.model import memory_read
from components.model.blocks import FeatureFusionBlock, UpsampleBlock
from components.model.encoders import MatchingNetwork
from components.model.xmem_blocks import HiddenReinforcer, HiddenUpdater, KeyProjection


@dataclass(frozen=True)
class XMemKeyFeatures:
    """The key encoder's output for a batch of frames: matching key, its shrinkage and selection, trunk maps."""

    key: torch.Tensor  # N, Ck, h, w
    shrinkage: torch.Tensor  # N, 1, h, w  (>= 1)
    selection: torch.Tensor  # N, Ck, h, w  in (0, 1)
    f16: torch.Tensor  # N, C16, h, w
    f8: torch.Tensor  # N, C8, H/8, W/8
    f4: torch.Tensor  # N, C4, H/4, W/4


class XMemDecoder(nn.Module):
    """[f16, readout, hidden] per object -> stride 16 -> 8 -> 4 -> logits; optionally updates the hidden state."""

    def __init__(self, channels: tuple[int, int, int], value_dim: int, hidden_dim: int, dims: tuple[int, int, int]) -> None:
        super().__init__()
        c4, c8, c16 = channels
        d16, d8, d4 = dims
        self.fuse = FeatureFusionBlock(c16 + value_dim + hidden_dim, d16)
        self.up_16_8 = UpsampleBlock(c8, d16, d8)
        self.up_8_4 = UpsampleBlock(c4, d8, d4)
        self.pred = nn.Conv2d(d4, 1, 3, padding=1)
        self.hidden_update = HiddenUpdater(dims, d8, hidden_dim)

    def forward(
        self, features: XMemKeyFeatures, readout: torch.Tensor, hidden: torch.Tensor, update_hidden: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """readout: N,O,Cv,h,w; hidden: N,O,Ch,h,w -> (logits N,O,H/4,W/4, hidden N,O,Ch,h,w)."""
        n, o = readout.shape[:2]
        flat_hidden = hidden.flatten(0, 1)
        g16 = self.fuse.forward_shared(features.f16, torch.cat([readout.flatten(0, 1), flat_hidden], dim=1))
        g8 = self.up_16_8(features.f8, g16)
        g4 = self.up_8_4(features.f4, g8)
        logits = self.pred(F.relu(g4))
        if update_hidden:
            flat_hidden = self.hidden_update(g16, g8, torch.cat([g4, logits], dim=1), flat_hidden)
        return logits.view(n, o, *logits.shape[-2:]), flat_hidden.view_as(hidden)


class XMem(MatchingNetwork):
    """The inference network: keys with shrinkage/selection, values with deep update, decoder with sensory memory."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        self.key_proj = KeyProjection(self.key_f16_channels, config.key_dim)
        self.value_encoder = self._build_value_encoder()
        self.hidden_reinforce = HiddenReinforcer(config.value_dim, config.hidden_dim)
        self.decoder = XMemDecoder(self.key_encoder.channels, config.value_dim, config.hidden_dim, config.decoder_dims)
        self._load_backbone_weights()

    @property
    def hidden_dim(self) -> int:
        return self.config.hidden_dim

    def encode_key(self, frames: torch.Tensor) -> XMemKeyFeatures:
        """frames: N,3,H,W in [0, 1] with H, W multiples of 16."""
        return self.project_key(self.key_encoder(self.normalise(frames)))

    def project_key(self, trunk) -> XMemKeyFeatures:
        """Key, shrinkage and selection from trunk features (the training wrapper shares one trunk pass)."""
        key, shrinkage, selection = self.key_proj(trunk.f16)
        return XMemKeyFeatures(key=key, shrinkage=shrinkage, selection=selection, f16=trunk.f16, f8=trunk.f8, f4=trunk.f4)

    def initial_hidden(self, features: XMemKeyFeatures, num_objects: int) -> torch.Tensor:
        """An empty sensory memory for `num_objects` objects: N,O,Ch,h,w zeros."""
        n, _, h, w = features.key.shape
        return features.key.new_zeros(n, num_objects, self.config.hidden_dim, h, w)

    def encode_value(
        self, frames: torch.Tensor, key_f16: torch.Tensor, hidden: torch.Tensor, masks: torch.Tensor, deep_update: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """frames N,3,H,W; key_f16 N,C16,h,w; hidden N,O,Ch,h,w; masks N,O,H,W -> (values N,O,Cv,h,w, hidden)."""
        values = self.value_encoder(self.normalise(frames), key_f16, masks.to(frames.dtype))
        if deep_update:
            fresh = self.hidden_reinforce(values.flatten(0, 1), hidden.flatten(0, 1).to(values.dtype))
            hidden = fresh.view(*hidden.shape)
        return values, hidden

    def read(
        self,
        memory_keys: torch.Tensor,
        memory_shrinkage: torch.Tensor,
        memory_values: torch.Tensor,
        query: XMemKeyFeatures,
        top_k: int | None = None,
    ) -> torch.Tensor:
        """Dense read (training): keys B,Ck,T,h,w; shrinkage B,1,T,h,w; values B,O,Cv,T,h,w -> B,O,Cv,h,w."""
        return memory_read.read(memory_keys, memory_values, query.key, top_k, memory_shrinkage, query.selection)

    def segment(
        self,
        features: XMemKeyFeatures,
        readout: torch.Tensor,
        hidden: torch.Tensor,
        selector: torch.Tensor | None = None,
        update_hidden: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Decode and aggregate: (logits B,O+1,H,W over {bg, objects}, object probs B,O,H,W, hidden B,O,Ch,h,w)."""
        out_size = (features.f4.shape[-2] * 4, features.f4.shape[-1] * 4)
        logits, hidden = self.decoder(features, readout, hidden, update_hidden)
        logits = F.interpolate(logits.flatten(0, 1)[:, None], size=out_size, mode="bilinear", align_corners=False)
        object_probs = torch.sigmoid(logits.view(*readout.shape[:2], *out_size))
        if selector is not None:
            object_probs = object_probs * selector[:, :, None, None].to(object_probs.dtype)
        return soft_aggregate(object_probs.float()), object_probs, hidden
