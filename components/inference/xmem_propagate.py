"""XMem propagation (METHOD_REFERENCE §5.2): sensory memory every frame, working memory every
`memory_every` frames (and where objects join), long-term prototypes when working memory fills.

Per frame: encode the key (with shrinkage and selection), read working + long-term memory with
top-k, decode every object with its hidden state. Ordinary frames let the decoder update the
sensory memory; memory frames instead refresh it by a deep update while encoding their values, as
XMem synchronises the two. The frame loop, given masks and label maps are `VideoPropagator`'s.
"""

from __future__ import annotations

import numpy as np
import torch

from components.config.schema import InferenceConfig
from components.inference.propagate import VideoPropagator, _VideoState
from components.inference.xmem_memory import XMemMemory
from components.model.xmem import XMem


class XMemPropagator(VideoPropagator):
    """Runs one video at a time through XMem with its bounded hierarchical memory."""

    def _new_state(self) -> _VideoState:
        memory = self.config.xmem
        return _VideoState(memory=XMemMemory(
            work_min_frames=memory.work_min_frames,
            work_max_frames=memory.work_max_frames,
            long_term_max=memory.long_term_max,
            num_prototypes=memory.num_prototypes,
            top_k=memory.top_k,
            consolidate_at=self.config.consolidate_at,
            usage_counting=self.config.usage_counting,
        ))

    def _segment(self, index: int, x: torch.Tensor, annotation: np.ndarray | None, state: _VideoState) -> torch.Tensor:
        features = self.model.encode_key(x)
        count = len(state.object_ids)
        regular_memory_frame = index % self.config.memory_every == 0
        if count:
            readout = state.memory.read(features.key, features.selection, count)
            logits, _, state.hidden = self.model.segment(
                features, readout, state.hidden, update_hidden=not regular_memory_frame
            )
            object_probs = torch.softmax(logits, dim=1)[:, 1:]
        else:
            object_probs = features.key.new_zeros(1, 0, features.f4.shape[-2] * 4, features.f4.shape[-1] * 4)
        joined = False
        if annotation is not None:
            object_probs, joined = self._apply_annotation(index, annotation, object_probs, state)
            state.hidden = self._with_new_objects(state.hidden, features, len(state.object_ids))
        if not state.object_ids:
            return object_probs
        if joined or regular_memory_frame:
            values, state.hidden = self.model.encode_value(x, features.f16, state.hidden, object_probs, deep_update=True)
            state.memory.add(index, features.key, features.shrinkage, features.selection, values, permanent=joined)
            state.memory_frames.append(index)
        return object_probs

    def _with_new_objects(self, hidden: torch.Tensor | None, features, count: int) -> torch.Tensor:
        """Objects that just joined start with an empty sensory memory."""
        fresh = self.model.initial_hidden(features, count)
        if hidden is not None:
            fresh[:, : hidden.shape[1]] = hidden.to(fresh.dtype)
        return fresh


def propagator_for(model: torch.nn.Module, config: InferenceConfig, device: torch.device | str | None = None,
                   keep_probabilities: bool = False) -> VideoPropagator:
    """The propagator that matches the network: XMem's hierarchical memory or STCN's."""
    if isinstance(model, XMem):
        return XMemPropagator(model, config, device, keep_probabilities)
    return VideoPropagator(model, config, device, keep_probabilities)
