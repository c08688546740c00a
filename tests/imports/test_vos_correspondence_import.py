"""VOS_Correspondence (the release) import: parity with the official code, its decoder entry, its training head."""

from __future__ import annotations

import pytest
import torch

from components.model.imports import import_checkpoint
from components.model.imports import stcn as stcn_import
from tests.imports.parity import (
    first_frame_encodings,
    load_fixture,
    loaded,
    max_diff,
    propagate,
)

TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def fixture():
    return load_fixture("vos_correspondence")


def test_propagation_matches_the_official_code(fixture):
    assert fixture.settings["parameters"] == 59_186_695
    imported = import_checkpoint(fixture.official_state, "vos-correspondence")
    assert imported.model_config["decoder_entry"] == "fusion"
    model = loaded(imported.state_dict, "fusion")
    key0, value0 = first_frame_encodings(model, fixture)
    assert max_diff(key0, fixture.key0) <= TOLERANCE
    assert max_diff(value0, fixture.value0) <= TOLERANCE
    assert max_diff(propagate(model, fixture), fixture.probs, fixture.settings["stride"]) <= TOLERANCE


def test_the_release_decoder_entry_keeps_its_order(fixture, monkeypatch):
    """The release fuses [key f16, readout], corrvos's own order: applying STCN's swap to it breaks parity."""
    monkeypatch.setattr(stcn_import, "DECODER_ENTRY_CONVS", ("decoder.fuse.block1.conv1.weight",))
    wrong = stcn_import.convert_family(fixture.official_state, {**stcn_import.MODEL_CONFIG, "decoder_entry": "fusion"},
                                       import_module_rules(), drop=(), decoder_swap=True, where="test")
    probs = propagate(loaded(wrong.state_dict, "fusion"), fixture, frames=2)
    assert max_diff(probs, fixture.probs[:, :1], fixture.settings["stride"]) > 1e-3


def test_value_fusion_order_trap(fixture, monkeypatch):
    monkeypatch.setattr(stcn_import, "VALUE_FUSION_CONVS", ())
    wrong = import_checkpoint(fixture.official_state, "vos-correspondence")
    _, value0 = first_frame_encodings(loaded(wrong.state_dict, "fusion"), fixture)
    assert max_diff(value0, fixture.value0) > 1e-2


def test_training_network_head_is_left_out_and_noted(fixture):
    """The training network's `key_proj2` (the correspondence head) has no place in an inference checkpoint."""
    state = {**fixture.official_state, "key_proj2.key_proj.weight": torch.zeros(64, 1024, 3, 3),
             "key_proj2.key_proj.bias": torch.zeros(64)}
    imported = import_checkpoint({"network": state}, "vos-correspondence")
    plain = import_checkpoint(fixture.official_state, "vos-correspondence")
    assert imported.state_dict.keys() == plain.state_dict.keys()
    assert any("key_proj2" in note for note in imported.notes)


def import_module_rules():
    from components.model.imports.vos_correspondence import RULES

    return RULES
