"""XMem's training wrapper: the inference network plus head g, unrolling a clip as XMem trains (§4.5, §5.3).

Frame 0's value is encoded with a deep update of the (empty) sensory memory. Frame t reads at most
`num_ref_frames` memory frames: all earlier ones while there are few enough, then frame 0 plus
random earlier ones (one draw per batch). The decoder updates the sensory memory every frame; each
frame's value encoding refreshes it too with probability `deep_update_prob`.
"""

from __future__ import annotations

import torch

from components.model.correspondence_head import CorrespondenceTraining, frame_of
from components.model.resnet import TrunkFeatures
from components.model.xmem import XMem, XMemKeyFeatures
from components.training.batch import ClipBatch


class XMemTrainWrapper(CorrespondenceTraining, XMem):
    """XMem that unrolls T-frame clips for training and exposes head-g embeddings of both views."""

    def _unroll(self, batch: ClipBatch, trunk: TrunkFeatures, generator: torch.Generator | None) -> dict[str, torch.Tensor]:
        b, t = batch.frames.shape[:2]
        features = self.project_key(trunk)
        per_frame = [_frame(features, b, t, i) for i in range(t)]
        selector = batch.selector
        hidden = self.initial_hidden(per_frame[0], batch.num_objects)
        values, hidden = self.encode_value(
            batch.frames[:, 0], per_frame[0].f16, hidden, batch.masks[:, 0] * selector[:, :, None, None], deep_update=True
        )
        memory_values = [values]
        logits, object_probs = [], []
        for i in range(1, t):
            refs = self._reference_frames(i, generator)
            readout = self.read(
                torch.stack([per_frame[r].key for r in refs], dim=2),
                torch.stack([per_frame[r].shrinkage for r in refs], dim=2),
                torch.stack([memory_values[r] for r in refs], dim=3),
                per_frame[i],
            )
            frame_logits, probs, hidden = self.segment(per_frame[i], readout, hidden, selector, update_hidden=True)
            logits.append(frame_logits)
            object_probs.append(probs)
            if i < t - 1:
                deep = bool(torch.rand((), generator=generator) < self.config.deep_update_prob)
                soft_masks = torch.softmax(frame_logits, dim=1)[:, 1:]
                values, hidden = self.encode_value(batch.frames[:, i], per_frame[i].f16, hidden, soft_masks, deep_update=deep)
                memory_values.append(values)
        return {"logits": torch.stack(logits, dim=1), "object_probs": torch.stack(object_probs, dim=1)}

    def _reference_frames(self, index: int, generator: torch.Generator | None) -> list[int]:
        """Memory frames read by frame `index`: all earlier ones, or frame 0 plus random earlier ones."""
        limit = self.config.num_ref_frames
        if index <= limit:
            return list(range(index))
        others = (torch.randperm(index - 1, generator=generator)[: limit - 1] + 1).tolist()
        return [0, *sorted(others)]


def _frame(features: XMemKeyFeatures, b: int, t: int, i: int) -> XMemKeyFeatures:
    return XMemKeyFeatures(
        key=frame_of(features.key, b, t, i),
        shrinkage=frame_of(features.shrinkage, b, t, i),
        selection=frame_of(features.selection, b, t, i),
        f16=frame_of(features.f16, b, t, i),
        f8=frame_of(features.f8, b, t, i),
        f4=frame_of(features.f4, b, t, i),
    )
