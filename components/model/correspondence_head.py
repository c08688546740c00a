"""The training-only part both bases share: head g and the two-view encoder passes (METHOD_REFERENCE §1.2-1.3).

`CorrespondenceTraining` is mixed into a training wrapper in front of its inference network
(`class STCNTrainWrapper(CorrespondenceTraining, STCN)`), so the wrapper's state dict is the
network's plus `correspondence_head.*`. It owns `forward`: one key-encoder pass over view A's frames
and view B's frame 0 with gradient, the base's own `_unroll` over view A, then head-g embeddings of
both views (view B frames >= 1 without gradient). Head g runs in fp32 with autocast off.
"""

from __future__ import annotations

import torch
from torch import nn

from components.config.schema import ModelConfig
from components.model.resnet import TrunkFeatures
from components.model.views import ViewB, make_view_b, sample_view_b_theta
from components.training.batch import ClipBatch

HEAD_PREFIX = "correspondence_head."


class CorrespondenceTraining(nn.Module):
    """Adds head g (3x3 conv f16 -> head_dim) and the training forward to an inference network."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        self.correspondence_head = nn.Conv2d(self.key_encoder.channels[2], config.head_dim, 3, padding=1)
        nn.init.orthogonal_(self.correspondence_head.weight)
        nn.init.zeros_(self.correspondence_head.bias)

    def inference_state_dict(self) -> dict[str, torch.Tensor]:
        """The weights of the inference network: everything but head g."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith(HEAD_PREFIX)}

    def embed(self, f16: torch.Tensor) -> torch.Tensor:
        """Head g in fp32 with autocast off (the correspondence terms go NaN in half precision)."""
        with torch.autocast(device_type=f16.device.type, enabled=False):
            return self.correspondence_head(f16.float())

    def forward(
        self,
        batch: ClipBatch,
        with_correspondence: bool = True,
        view_b: ViewB | None = None,
        generator: torch.Generator | None = None,
    ) -> dict[str, torch.Tensor]:
        """Unroll the clip; returns per-frame logits for frames 1..T-1 and, when asked, embeddings.

        Keys: `logits` B,T-1,O+1,H,W (soft-aggregated), `object_probs` B,T-1,O,H,W; with
        correspondence also `embed_a`, `embed_b` (B,T,D,h,w, fp32) and `theta` (B,2,3).
        """
        b, t = batch.frames.shape[:2]
        frames_a = batch.frames.flatten(0, 1)  # B*T, 3, H, W
        if with_correspondence:
            if view_b is None:
                theta = sample_view_b_theta(b, generator=generator)
                view_b = make_view_b(batch.frames, theta.to(batch.frames.device))
            inputs = torch.cat([frames_a, view_b.frames[:, 0]], dim=0)
        else:
            inputs = frames_a
        trunk = self.key_encoder(self.normalise(inputs))
        n_a = b * t
        trunk_a = TrunkFeatures(f4=trunk.f4[:n_a], f8=trunk.f8[:n_a], f16=trunk.f16[:n_a])
        outputs = self._unroll(batch, trunk_a, generator)
        if with_correspondence:
            outputs.update(self._embeddings(trunk.f16, view_b, b, t))
        return outputs

    def _unroll(self, batch: ClipBatch, trunk: TrunkFeatures, generator: torch.Generator | None) -> dict[str, torch.Tensor]:
        """The base's supervised pass over view A; returns `logits` and `object_probs`."""
        raise NotImplementedError

    def _embeddings(self, f16_pass1: torch.Tensor, view_b: ViewB, b: int, t: int) -> dict[str, torch.Tensor]:
        """Head-g embeddings: view A (all frames) and view B frame 0 with gradient, view B frames >= 1 without."""
        embed_pass1 = self.embed(f16_pass1)  # B*T + B, D, h, w
        embed_a = embed_pass1[: b * t].view(b, t, *embed_pass1.shape[1:])
        embed_b0 = embed_pass1[b * t :]
        with torch.no_grad():
            rest = view_b.frames[:, 1:].flatten(0, 1)
            embed_rest = self.embed(self.key_encoder(self.normalise(rest)).f16)
        embed_b = torch.cat([embed_b0[:, None], embed_rest.view(b, t - 1, *embed_rest.shape[1:])], dim=1)
        return {"embed_a": embed_a, "embed_b": embed_b, "theta": view_b.theta}


def frame_of(x: torch.Tensor, b: int, t: int, i: int) -> torch.Tensor:
    """Frame i of every clip from a flattened (B*T, ...) tensor."""
    return x.view(b, t, *x.shape[1:])[:, i]
