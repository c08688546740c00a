"""The training wrapper: STCN plus the training-only head g, unrolling a clip over two views.

It subclasses the inference network, so inference code never changes; it adds the head g
(3x3 conv f16 -> 64, METHOD_REFERENCE §1.2) and a forward that returns everything the losses need.
Encoder passes follow §1.3: view-A frames and view-B frame 0 with gradient, view-B frames >= 1
without. Head g runs in fp32 with autocast off, as do the losses.
"""

from __future__ import annotations

import torch
from torch import nn

from components.config.schema import ModelConfig
from components.model.stcn import STCN, KeyFeatures
from components.model.views import ViewB, make_view_b, sample_view_b_theta
from components.training.batch import ClipBatch

HEAD_PREFIX = "correspondence_head."


class STCNTrainWrapper(STCN):
    """STCN that unrolls T-frame clips for training and exposes head-g embeddings of both views."""

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
        f16_a = trunk.f16[:n_a]
        features = KeyFeatures(
            key=self.key_proj(f16_a),
            f16=f16_a,
            f8=trunk.f8[:n_a],
            f4=trunk.f4[:n_a],
        )
        outputs = self._unroll(batch, features)
        if with_correspondence:
            outputs.update(self._embeddings(trunk.f16, view_b, b, t))
        return outputs

    def _unroll(self, batch: ClipBatch, features: KeyFeatures) -> dict[str, torch.Tensor]:
        """Frame 0 with its masks is memory; each later frame is segmented, then added with its soft masks."""
        b, t = batch.frames.shape[:2]
        per_frame = [_frame_features(features, b, t, i) for i in range(t)]
        frames = batch.frames
        selector = batch.selector
        values = self.encode_value(frames[:, 0], per_frame[0].f16, batch.masks[:, 0] * selector[:, :, None, None])
        memory_keys = [per_frame[0].key]
        memory_values = [values]
        logits, object_probs = [], []
        for i in range(1, t):
            readout = self.read(torch.stack(memory_keys, dim=2), torch.stack(memory_values, dim=3), per_frame[i].key)
            frame_logits, probs = self.segment(per_frame[i], readout, selector)
            logits.append(frame_logits)
            object_probs.append(probs)
            if i < t - 1:
                soft_masks = torch.softmax(frame_logits, dim=1)[:, 1:]
                memory_keys.append(per_frame[i].key)
                memory_values.append(self.encode_value(frames[:, i], per_frame[i].f16, soft_masks))
        return {"logits": torch.stack(logits, dim=1), "object_probs": torch.stack(object_probs, dim=1)}

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


def _frame_features(features: KeyFeatures, b: int, t: int, i: int) -> KeyFeatures:
    """Features of frame i of every clip from the flattened (B*T) encoder output."""

    def pick(x: torch.Tensor) -> torch.Tensor:
        return x.view(b, t, *x.shape[1:])[:, i]

    return KeyFeatures(key=pick(features.key), f16=pick(features.f16), f8=pick(features.f8), f4=pick(features.f4))


