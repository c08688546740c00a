"""hkchengrex/STCN checkpoints (`stcn.pth`, stage-0/01/… variants) -> corrvos STCN with `decoder_entry: stcn`.

Besides mechanical renames (`res2` -> `layer1`, `fuser` -> `fusion`, CBAM gate names, `out_conv` ->
`out_block`, `compress` -> `fuse`, `key_comp` into the decoder), three steps are not visible in the
key names, and each is silent when left out (same shapes, wrong values):
- the official value fusion concatenates [value features, key f16]; corrvos [key f16, value features]:
  the input channels of the fusion's first conv and shortcut are swapped here;
- the official decoder entry concatenates [memory readout, key_comp output]; corrvos [query, readout]:
  likewise swapped;
- the official value ResNet-18 convolutions carry biases (15 of them) that corrvos's torchvision-layout
  trunk has no slot for: each is folded into the BatchNorm that follows (exact in eval mode).
A stage-0 checkpoint's 4-channel value `conv1` is zero-padded to 5 channels, as the official evaluation does.
The training network saves the same keys (optionally inside {"network": ...} and with `module.`).
"""

from __future__ import annotations

from typing import Any, Mapping

import torch

from components.errors import CorrvosError
from components.model.imports import (
    check_exact,
    fold_bias_into_batchnorm,
    network_shapes,
    pad_input_channels,
    rename,
    strip_prefix,
    swap_input_blocks,
)
from components.model.imports.base import ImportedWeights

FORMAT = "stcn"
WHERE = "STCN checkpoint"

MODEL_CONFIG: dict[str, Any] = {
    "name": "stcn", "preset": "stcn", "key_backbone": "resnet50", "value_backbone": "resnet18",
    "backbone_width": 64, "output_stride": 16, "key_dim": 64, "value_dim": 512,
    "decoder_dims": (512, 256, 256), "decoder_entry": "stcn", "batchnorm": "frozen", "single_object": False,
}

CBAM_RULES = (("attention.ChannelGate.mlp.1.", "attention.channel_gate.mlp.0."),
              ("attention.ChannelGate.mlp.3.", "attention.channel_gate.mlp.2."),
              ("attention.SpatialGate.spatial.conv.", "attention.spatial_gate.conv."))

# (official prefix, corrvos prefix), first match wins
ENCODER_RULES: tuple[tuple[str, str], ...] = (
    ("key_encoder.res2.", "key_encoder.layer1."),
    ("key_encoder.", "key_encoder."),
    ("key_proj.key_proj.", "key_proj."),
    *((f"value_encoder.fuser.{old}", f"value_encoder.fusion.{new}") for old, new in CBAM_RULES),
    ("value_encoder.fuser.", "value_encoder.fusion."),
    ("value_encoder.", "value_encoder.trunk."),
)
UPSAMPLE_RULES: tuple[tuple[str, str], ...] = (
    *((f"decoder.{up}.out_conv.", f"decoder.{up}.out_block.") for up in ("up_16_8", "up_8_4")),
    ("decoder.up_", "decoder.up_"),
    ("decoder.pred.", "decoder.pred."),
)
RULES: tuple[tuple[str, str], ...] = (
    *ENCODER_RULES,
    ("key_comp.", "decoder.key_comp."),
    ("decoder.compress.", "decoder.fuse."),
    *UPSAMPLE_RULES,
)

# the official value ResNet-18's biased convolutions and the BatchNorm after each (corrvos names)
VALUE_BIASES: tuple[tuple[str, str], ...] = (
    ("conv1", "bn1"),
    *((f"layer{i}.{b}.conv{c}", f"layer{i}.{b}.bn{c}") for i in (1, 2, 3) for b in (0, 1) for c in (1, 2)),
    *((f"layer{i}.0.downsample.0", f"layer{i}.0.downsample.1") for i in (2, 3)),
)
VALUE_FUSION_CONVS = ("value_encoder.fusion.block1.conv1.weight", "value_encoder.fusion.block1.downsample.weight")
DECODER_ENTRY_CONVS = ("decoder.fuse.conv1.weight", "decoder.fuse.downsample.weight")


def convert(state: Mapping[str, torch.Tensor]) -> ImportedWeights:
    """An official STCN state dict (inference or training network) -> corrvos STCN weights."""
    return convert_family(state, MODEL_CONFIG, RULES, drop=(), decoder_swap=True, where=WHERE)


def convert_family(state: Mapping[str, torch.Tensor], model_config: dict[str, Any], rules: tuple[tuple[str, str], ...],
                   drop: tuple[str, ...], decoder_swap: bool, where: str) -> ImportedWeights:
    """What STCN and the released correspondence code share: renames, bias folding, channel orders, conv1 padding."""
    expected = network_shapes(model_config)
    renamed, origin = rename(strip_prefix(state), rules, drop=drop, where=where)
    notes = [f"renamed {len(renamed)} official entries"]
    dropped = sorted(k for k in strip_prefix(state) if k.startswith(drop)) if drop else []
    if dropped:
        notes.append(f"left out {len(dropped)} training-only entries ({', '.join(dropped)})")
    for conv, bn in VALUE_BIASES:
        if f"value_encoder.trunk.{conv}.bias" not in renamed:
            raise CorrvosError(f"{where}: missing key 'value_encoder.{conv}.bias'")
        fold_bias_into_batchnorm(renamed, f"value_encoder.trunk.{conv}", f"value_encoder.trunk.{bn}", where)
    notes.append(f"folded {len(VALUE_BIASES)} value-encoder conv biases into the following BatchNorm")
    conv1 = "value_encoder.trunk.conv1.weight"
    if conv1 in renamed and conv1 in expected and renamed[conv1].shape[1] < expected[conv1].shape[1]:
        if renamed[conv1].shape[1] != expected[conv1].shape[1] - 1:
            raise CorrvosError(f"{where}: key 'value_encoder.conv1.weight' has {renamed[conv1].shape[1]} input "
                               f"channels, expected {expected[conv1].shape[1]} (or one fewer, a stage-0 model)")
        renamed[conv1] = pad_input_channels(renamed[conv1], expected[conv1].shape[1])
        notes.append("zero-padded the stage-0 value conv1 from 4 to 5 input channels (as the official evaluation)")
    key_channels = expected["key_proj.weight"].shape[1]
    swaps = [(k, None) for k in VALUE_FUSION_CONVS]
    if decoder_swap:
        swaps += [(k, model_config["value_dim"]) for k in DECODER_ENTRY_CONVS]
    for key, first in swaps:
        if key in renamed and key in expected and renamed[key].shape == expected[key].shape:
            split = renamed[key].shape[1] - key_channels if first is None else first
            renamed[key] = swap_input_blocks(renamed[key], split)
    notes.append("value fusion input reordered [value, key f16] -> [key f16, value]")
    if decoder_swap:
        notes.append("decoder entry input reordered [readout, key_comp] -> [key_comp, readout]")
    check_exact(renamed, expected, origin, where, official_name=lambda key: official_key(key, rules))
    state_dict = {k: renamed[k].detach().clone().contiguous() for k in expected}
    return ImportedWeights(dict(model_config), state_dict, tuple(notes))


def official_key(key: str, rules: tuple[tuple[str, str], ...]) -> str:
    """The official name of corrvos key `key` (the rename tables read backwards), for error messages."""
    for old, new in rules:
        if key.startswith(new):
            return old + key[len(new):]
    return key
