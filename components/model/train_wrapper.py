"""STCN's training wrapper: the inference network plus head g, unrolling a clip as STCN trains.

Frame 0 with its masks is memory; each later frame reads every earlier memory frame (full softmax),
is segmented, and joins memory with its soft masks. Head g and the two-view passes come from
`CorrespondenceTraining`, shared with XMem.
"""

from __future__ import annotations

import torch

from components.model.correspondence_head import HEAD_PREFIX, CorrespondenceTraining, frame_of
from components.model.resnet import TrunkFeatures
from components.model.stcn import STCN, KeyFeatures
from components.training.batch import ClipBatch

__all__ = ["HEAD_PREFIX", "STCNTrainWrapper"]


class STCNTrainWrapper(CorrespondenceTraining, STCN):
    """STCN that unrolls T-frame clips for training and exposes head-g embeddings of both views."""

    def _unroll(self, batch: ClipBatch, trunk: TrunkFeatures, generator: torch.Generator | None) -> dict[str, torch.Tensor]:
        """Frame 0 with its masks is memory; each later frame is segmented, then added with its soft masks."""
        b, t = batch.frames.shape[:2]
        key = self.key_proj(trunk.f16)
        per_frame = [
            KeyFeatures(key=frame_of(key, b, t, i), f16=frame_of(trunk.f16, b, t, i),
                        f8=frame_of(trunk.f8, b, t, i), f4=frame_of(trunk.f4, b, t, i))
            for i in range(t)
        ]
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
