"""STCN import: parity with the official code on seeded weights, and one test per silent trap."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from components.errors import CorrvosError
from components.model.imports import import_checkpoint
from components.model.imports import stcn as stcn_import
from tests.imports.parity import (
    first_frame_encodings,
    load_fixture,
    loaded,
    max_diff,
    propagate,
)

TOLERANCE = 1e-5  # fp32 end to end; measured ~1e-7 on the stages, ~1e-6 on propagated probabilities


@pytest.fixture(scope="module")
def fixture():
    return load_fixture("stcn")


@pytest.fixture(scope="module")
def imported(fixture):
    return import_checkpoint(fixture.official_state, "stcn")


def test_official_parameter_count_and_config(fixture, imported):
    assert fixture.settings["parameters"] == 54_434_180  # the official inference network, BN buffers excluded
    assert imported.model_config["decoder_entry"] == "stcn"
    model = loaded(imported.state_dict, "stcn")  # strict load: every key and shape fits
    # corrvos's trunk has no slot for the 15 folded value-encoder biases (2,240 numbers)
    assert sum(p.numel() for p in model.parameters()) == 54_434_180 - 2_240


def test_propagation_matches_the_official_code(fixture, imported):
    model = loaded(imported.state_dict, "stcn")
    key0, value0 = first_frame_encodings(model, fixture)
    assert max_diff(key0, fixture.key0) <= TOLERANCE
    assert max_diff(value0, fixture.value0) <= TOLERANCE
    probs = propagate(model, fixture)
    assert probs.shape[1] == fixture.settings["frames"] - 1
    assert max_diff(probs, fixture.probs, fixture.settings["stride"]) <= TOLERANCE
    assert 0.05 < float(fixture.probs.mean()) < 0.95  # the fixture is not saturated: a wrong step would show


def test_value_fusion_order_trap(fixture, monkeypatch):
    """Renaming alone (official [value, key f16] order kept) loads without error and computes wrong values."""
    monkeypatch.setattr(stcn_import, "VALUE_FUSION_CONVS", ())
    wrong = import_checkpoint(fixture.official_state, "stcn")
    _, value0 = first_frame_encodings(loaded(wrong.state_dict, "stcn"), fixture)
    assert max_diff(value0, fixture.value0) > 1e-2


def test_dropped_value_biases_trap(fixture, monkeypatch):
    """Dropping the 15 biases instead of folding them loads without error and computes wrong values."""
    monkeypatch.setattr(stcn_import, "fold_bias_into_batchnorm",
                        lambda state, conv, bn, where="": state.pop(f"{conv}.bias"))
    wrong = import_checkpoint(fixture.official_state, "stcn")
    _, value0 = first_frame_encodings(loaded(wrong.state_dict, "stcn"), fixture)
    assert max_diff(value0, fixture.value0) > 1e-3


def test_decoder_entry_order_trap(fixture, monkeypatch):
    """The decoder's [readout, key_comp] input, not swapped, gives other probabilities from frame 1 on."""
    monkeypatch.setattr(stcn_import, "DECODER_ENTRY_CONVS", ())
    wrong = import_checkpoint(fixture.official_state, "stcn")
    probs = propagate(loaded(wrong.state_dict, "stcn"), fixture, frames=2)
    assert max_diff(probs, fixture.probs[:, :1], fixture.settings["stride"]) > 1e-2


def test_stage0_four_channel_conv1_is_zero_padded(fixture, imported):
    state = dict(fixture.official_state)
    state["value_encoder.conv1.weight"] = state["value_encoder.conv1.weight"][:, :4].clone()
    stage0 = import_checkpoint(state, "stcn")
    conv1 = stage0.state_dict["value_encoder.trunk.conv1.weight"]
    assert conv1.shape[1] == 5 and not conv1[:, 4].any()
    assert torch.equal(conv1[:, :4], imported.state_dict["value_encoder.trunk.conv1.weight"][:, :4])
    assert any("4 to 5" in note for note in stage0.notes)


def test_training_layouts_give_the_same_weights(fixture, imported):
    """Training checkpoint {"network": ..., "optimizer": ...}, DDP's `module.` prefix: the same import."""
    wrapped = {"it": 3, "network": {f"module.{k}": v for k, v in fixture.official_state.items()},
               "optimizer": {"state": {}, "param_groups": []}}
    again = import_checkpoint(wrapped, "stcn")
    assert again.state_dict.keys() == imported.state_dict.keys()
    assert all(torch.equal(again.state_dict[k], v) for k, v in imported.state_dict.items())


@pytest.mark.parametrize("change, named", [
    ("drop:decoder.compress.conv1.weight", "decoder.compress.conv1.weight"),
    ("drop:value_encoder.layer2.0.downsample.0.bias", "value_encoder.layer2.0.downsample.0.bias"),
    ("add:decoder.extra.weight", "decoder.extra.weight"),
    ("add:value_encoder.layer4.0.conv1.weight", "value_encoder.layer4.0.conv1.weight"),
    ("shape:key_proj.key_proj.weight", "key_proj.key_proj.weight"),
])
def test_a_bad_key_is_named_never_a_partial_load(fixture, change, named):
    kind, key = change.split(":")
    state = dict(fixture.official_state)
    if kind == "drop":
        del state[key]
    elif kind == "add":
        state[key] = torch.zeros(3, 3, 3, 3)
    else:
        state[key] = state[key][:32]
    with pytest.raises(CorrvosError, match=named.replace(".", r"\.")):
        import_checkpoint(state, "stcn")


def test_unknown_format_and_missing_importer_are_named():
    with pytest.raises(CorrvosError, match="'nope'"):
        import_checkpoint({"a": torch.zeros(1)}, "nope")
    with pytest.raises(CorrvosError, match="no state dict"):
        import_checkpoint({"it": 3}, "stcn")


def test_probabilities_are_not_trivially_equal(fixture):
    """Guard on the fixture itself: the objects' probabilities vary over frames and pixels."""
    assert np.ptp(fixture.probs) > 0.2
