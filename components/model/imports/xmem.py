"""Import an official XMem checkpoint (hkchengrex/XMem: `XMem.pth`, `XMem-s012.pth`, training saves).

Official and corrvos XMem compute the same function: every concatenation is in the same order
(value fusion [key f16, value trunk f16], decoder entry [f16, readout, hidden], both GRU inputs
[features, hidden], the hidden updater's stride-4 input [g4, logit], the value encoder's input
[image, target mask, other objects]), so the conversion is renames alone plus two layout steps:
the stage-0 (single-object) value `conv1` with 4 input channels is zero-padded to 5, as the
official evaluation does, and a checkpoint without BatchNorm step counters gets zero ones.
The official value stem runs bn -> maxpool -> relu where corrvos runs bn -> relu -> maxpool: the
same values, since ReLU is monotone. A key that is missing, unexpected or misshapen is an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from components.errors import CorrvosError
from components.model.imports import (
    WRAPPER_KEYS,
    check_exact,
    network_shapes,
    pad_input_channels,
    rename,
    strip_prefix,
)
from components.model.imports.base import ImportedWeights

FORMAT = "xmem"
WHERE = "xmem checkpoint"
_VALUE_CONV1 = "value_encoder.conv1.weight"


def _fusion(official: str, ours: str) -> list[tuple[str, str]]:
    """A FeatureFusionBlock's entries: ResBlocks by the same names, CBAM's gates renamed (mlp.1/.3: Flatten is mlp.0)."""
    inner = [("block1.", "block1."), ("block2.", "block2."),
             ("attention.ChannelGate.mlp.1.", "attention.channel_gate.mlp.0."),
             ("attention.ChannelGate.mlp.3.", "attention.channel_gate.mlp.2."),
             ("attention.SpatialGate.spatial.conv.", "attention.spatial_gate.conv.")]
    return [(official + a, ours + b) for a, b in inner]


# (official prefix, corrvos prefix), first match wins; an official key no rule covers is unexpected.
RULES: tuple[tuple[str, str], ...] = (
    *[(f"key_encoder.{m}.", f"key_encoder.{m}.") for m in ("conv1", "bn1", "layer2", "layer3")],
    ("key_encoder.res2.", "key_encoder.layer1."),
    ("key_proj.key_proj.", "key_proj.key."),
    ("key_proj.d_proj.", "key_proj.shrinkage."),
    ("key_proj.e_proj.", "key_proj.selection."),
    *[(f"value_encoder.{m}.", f"value_encoder.trunk.{m}.") for m in ("conv1", "bn1", "layer1", "layer2", "layer3")],
    *_fusion("value_encoder.fuser.", "value_encoder.fusion."),
    ("value_encoder.hidden_reinforce.transform.", "hidden_reinforce.transform."),
    *_fusion("decoder.fuser.", "decoder.fuse."),
    ("decoder.hidden_update.g16_conv.", "decoder.hidden_update.from16."),
    ("decoder.hidden_update.g8_conv.", "decoder.hidden_update.from8."),
    ("decoder.hidden_update.g4_conv.", "decoder.hidden_update.from4."),
    ("decoder.hidden_update.transform.", "decoder.hidden_update.transform."),
    *[(f"decoder.{up}.skip_conv.", f"decoder.{up}.skip_conv.") for up in ("up_16_8", "up_8_4")],
    *[(f"decoder.{up}.out_conv.", f"decoder.{up}.out_block.") for up in ("up_16_8", "up_8_4")],
    ("decoder.pred.", "decoder.pred."),
)


def rename_key(key: str) -> str:
    """The corrvos name of official XMem entry `key`; a CorrvosError names a key with no slot."""
    renamed, _ = rename({key: torch.empty(0)}, RULES, where=WHERE)
    return next(iter(renamed))


def official_name(key: str) -> str:
    """The official name of corrvos XMem entry `key` (for naming what a checkpoint lacks)."""
    match = next(((old, new) for old, new in RULES if key.startswith(new)), None)
    return match[0] + key[len(match[1]):] if match else key


def _unwrap(state: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """The network's tensors: a training checkpoint's `network` entry (or `state_dict`/`model`), `module.` stripped."""
    inner = next((state[k] for k in WRAPPER_KEYS if isinstance(state.get(k), Mapping)), None)
    state = strip_prefix(inner if inner is not None else state)
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise CorrvosError(f"{WHERE}: entry {key!r} is {type(value).__name__}, expected a tensor")
    return state


def _require(state: Mapping[str, torch.Tensor], key: str) -> torch.Tensor:
    if key not in state:
        raise CorrvosError(f"{WHERE}: missing key {key!r}")
    return state[key]


def _model_config(state: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """corrvos `ModelConfig` fields for the checkpoint, its sizes read from the weights as the official code does."""
    if "decoder.hidden_update.transform.weight" not in state:
        raise CorrvosError(f"{WHERE}: missing key 'decoder.hidden_update.transform.weight' "
                           "(a model without sensory memory, hidden_dim 0, has no corrvos counterpart)")
    return {
        "name": "xmem",
        "preset": "xmem",
        "key_backbone": "resnet50",
        "value_backbone": "resnet18",
        "backbone_width": 64,
        "output_stride": 16,
        "key_dim": int(_require(state, "key_proj.key_proj.weight").shape[0]),
        "value_dim": int(_require(state, "value_encoder.fuser.block2.conv2.weight").shape[0]),
        "hidden_dim": int(state["decoder.hidden_update.transform.weight"].shape[0]) // 3,
        "decoder_dims": [512, 256, 256],
        "batchnorm": "frozen",
        "single_object": False,
    }


def convert(state: Mapping[str, torch.Tensor]) -> ImportedWeights:
    """Official XMem state dict (inference or training layout, optional `module.` prefix) -> corrvos XMem."""
    official = _unwrap(state)
    notes: list[str] = []
    conv1 = _require(official, _VALUE_CONV1)
    if conv1.ndim == 4 and conv1.shape[1] == 4:  # stage-0 single-object model: no other-objects channel
        official[_VALUE_CONV1] = pad_input_channels(conv1, 5)
        notes.append(f"{_VALUE_CONV1}: 4 input channels zero-padded to 5 (other-objects mask), as the official eval does")
    model_config = _model_config(official)
    converted, origin = rename(official, RULES, where=WHERE)
    converted = {k: v.float() if v.is_floating_point() else v for k, v in converted.items()}
    expected = network_shapes(model_config)
    counters = [k for k in expected if k.endswith("num_batches_tracked") and k not in converted]
    for key in counters:
        converted[key] = torch.zeros((), dtype=torch.long)
    if counters:
        notes.append(f"{len(counters)} BatchNorm num_batches_tracked counters absent: set to 0 (unused in eval)")
    check_exact(converted, expected, origin, WHERE, official_name)
    notes.append(f"renamed {len(official)} official entries; concatenation orders match, no channel permutation")
    return ImportedWeights(model_config=model_config, state_dict=converted, notes=tuple(notes))
