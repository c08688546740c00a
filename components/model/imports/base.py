"""What every checkpoint importer returns, and the small tensor steps they share.

An importer (`components/model/imports/<format>.py`) turns an official state dict into corrvos's
inference network: a model config and a state dict whose keys are exactly the network's, so
`load_inference_checkpoint` loads it with `strict=True`. Nothing here reads files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass(frozen=True)
class ImportedWeights:
    """An official checkpoint converted: corrvos `ModelConfig` fields, the inference network's full state
    dict, and one line per non-trivial step taken (folded biases, padded channels, reordered inputs)."""

    model_config: dict[str, Any]
    state_dict: dict[str, torch.Tensor]
    notes: tuple[str, ...] = field(default=())
