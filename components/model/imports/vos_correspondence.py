"""wenguanwang/VOS_Correspondence checkpoints (the released correspondence models) -> corrvos STCN, `decoder_entry: fusion`.

The release is STCN with another decoder entry: no `key_comp`; a FeatureFusionBlock (`decoder.fuser`,
with CBAM) on [key f16, memory readout], which is corrvos's `fusion` entry in the same order, so only its
names change. The value encoder is STCN's (same three silent steps: fusion order, 15 biases, stage-0
conv1; see `stcn.py`). The training network adds `key_proj2`, the correspondence head: corrvos keeps
head g out of inference checkpoints, so it is left out (and noted).
"""

from __future__ import annotations

from typing import Any, Mapping

import torch

from components.model.imports.base import ImportedWeights
from components.model.imports.stcn import (
    CBAM_RULES,
    ENCODER_RULES,
    UPSAMPLE_RULES,
    convert_family,
)
from components.model.imports.stcn import MODEL_CONFIG as STCN_CONFIG

FORMAT = "vos-correspondence"
WHERE = "VOS_Correspondence checkpoint"

MODEL_CONFIG: dict[str, Any] = {**STCN_CONFIG, "decoder_entry": "fusion"}
RULES: tuple[tuple[str, str], ...] = (
    *ENCODER_RULES,
    *((f"decoder.fuser.{old}", f"decoder.fuse.{new}") for old, new in CBAM_RULES),
    ("decoder.fuser.", "decoder.fuse."),
    *UPSAMPLE_RULES,
)
TRAINING_ONLY = ("key_proj2.",)


def convert(state: Mapping[str, torch.Tensor]) -> ImportedWeights:
    """A released state dict (inference or training network) -> corrvos STCN weights with the fusion decoder entry."""
    return convert_family(state, MODEL_CONFIG, RULES, drop=TRAINING_ONLY, decoder_swap=False, where=WHERE)
