"""XMem import (issue 20): official-layout weights -> corrvos XMem computes what the official network
computes, stage by stage and over a whole video, against outputs recorded from hkchengrex/XMem
(`tools/parity/xmem_record.py`) on seeded random weights that the test regenerates from a key ->
shape list. Every trap (concatenation orders, the stage-0 conv1, renames) breaks these if reintroduced.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import pytest
import torch

from components.config import InferenceConfig, ModelConfig, config_from_dict
from components.errors import CorrvosError
from components.inference.xmem_propagate import XMemPropagator
from components.model.checkpoint import (
    load_inference_checkpoint,
    save_inference_checkpoint,
)
from components.model.imports import xmem
from components.model.imports.base import ImportedWeights
from tools.parity.xmem_fixture import OUTPUTS_NPZ, official_state

TOLERANCE = 1e-5  # fp32, absolute; the recorded maps are of order 1-10
WRONG = 1e-3  # a trap reintroduced moves the affected stage by far more than this
OBJECTS = 3


@pytest.fixture(scope="module")
def recorded() -> dict[str, np.ndarray]:
    with np.load(OUTPUTS_NPZ) as data:
        return dict(data)


@pytest.fixture(scope="module")
def official() -> dict[str, torch.Tensor]:
    return official_state()


@pytest.fixture(scope="module")
def imported(official: dict[str, torch.Tensor]) -> ImportedWeights:
    return xmem.convert(official)


@pytest.fixture(scope="module")
def model(imported: ImportedWeights, tmp_path_factory: pytest.TempPathFactory) -> torch.nn.Module:
    """The imported weights through a corrvos inference checkpoint, loaded strict as `predict` loads it."""
    path = str(tmp_path_factory.mktemp("xmem") / "model.pt")
    config = config_from_dict(ModelConfig, imported.model_config, "model")
    save_inference_checkpoint(path, imported.state_dict, config)
    network, _ = load_inference_checkpoint(path)
    return network


def _one_hot(label: np.ndarray) -> torch.Tensor:
    lab = torch.from_numpy(label).long()
    return torch.stack([(lab == o + 1).float() for o in range(OBJECTS)])


def corrvos_stages(model: torch.nn.Module, recorded: dict[str, np.ndarray], last: int = 2) -> dict[str, np.ndarray]:
    """The recorder's stage calls, through corrvos's XMem methods; the same keys and subsampling."""
    vc, hc, px = recorded["value_index"], recorded["hidden_index"], recorded["pixel_index"]
    x = torch.from_numpy(recorded["frames"]).permute(0, 3, 1, 2).float() / 255
    out: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        f = model.encode_key(x[0:1])
        hidden = model.initial_hidden(f, OBJECTS)
        value, hidden = model.encode_value(x[0:1], f.f16, hidden, _one_hot(recorded["labels"][0])[None], deep_update=True)
        out.update(key_0=f.key, shrinkage_0=f.shrinkage, selection_0=f.selection, value_0=value[:, :, vc],
                   hidden_after_value_0=hidden[:, :, hc])
        keys, shrinks, values = [f.key], [f.shrinkage], [value]
        for t in range(1, last + 1):
            f = model.encode_key(x[t:t + 1])
            mk, ms, mv = torch.stack(keys, 2), torch.stack(shrinks, 2), torch.stack(values, 3)
            readout = model.read(mk, ms, mv, f)
            readout_top = model.read(mk, ms, mv, f, top_k=30)
            logits, _, hidden = model.segment(f, readout, hidden, update_hidden=True)
            prob = torch.softmax(logits, dim=1)
            value, hidden_deep = model.encode_value(x[t:t + 1], f.f16, hidden, prob[:, 1:], deep_update=True)
            out.update({
                f"readout_{t}": readout[:, :, vc], f"readout_top30_{t}": readout_top[:, :, vc],
                f"hidden_after_segment_{t}": hidden[:, :, hc], f"prob_{t}": prob[..., px, :][..., px],
            })
            if t == 1:
                out.update({f"key_{t}": f.key, f"shrinkage_{t}": f.shrinkage, f"selection_{t}": f.selection,
                            f"value_{t}": value[:, :, vc], f"hidden_after_value_{t}": hidden_deep[:, :, hc]})
            keys.append(f.key), shrinks.append(f.shrinkage), values.append(value)
            hidden = hidden_deep
    return {k: v.float().numpy() for k, v in out.items()}


def _differences(ours: dict[str, np.ndarray], recorded: dict[str, np.ndarray]) -> dict[str, float]:
    return {k: float(np.abs(v - recorded[k]).max()) for k, v in ours.items()}


@contextmanager
def _loaded(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> Iterator[torch.nn.Module]:
    """`model` with `state` loaded (strict), restored afterwards."""
    original = {k: v.clone() for k, v in model.state_dict().items()}
    model.load_state_dict(state, strict=True)
    try:
        yield model
    finally:
        model.load_state_dict(original, strict=True)


def test_import_gives_corrvos_xmem_with_the_official_parameter_count(imported: ImportedWeights) -> None:
    params = sum(v.numel() for k, v in imported.state_dict.items() if "running" not in k and "num_batches" not in k)
    assert params == 62_185_224
    assert imported.model_config["name"] == "xmem"
    assert (imported.model_config["key_dim"], imported.model_config["value_dim"], imported.model_config["hidden_dim"]) == (64, 512, 64)


def test_every_stage_matches_the_official_network(model: torch.nn.Module, recorded: dict[str, np.ndarray]) -> None:
    differences = _differences(corrvos_stages(model, recorded), recorded)
    print("max abs difference per stage:", {k: f"{v:.1e}" for k, v in differences.items()})
    assert max(differences.values()) <= TOLERANCE, differences
    assert np.abs(recorded["readout_top30_1"] - recorded["readout_1"]).max() > WRONG  # top-k 30 < 36 elements bites


def test_whole_video_matches_official_inference_core(model: torch.nn.Module, recorded: dict[str, np.ndarray]) -> None:
    """InferenceCore with eval.py's defaults vs XMemPropagator with `inference.preset: official`."""
    config = config_from_dict(InferenceConfig, {"preset": "official"}, "inference")
    propagator = XMemPropagator(model, config, "cpu")
    labels = recorded["labels"]
    px = recorded["video_pixel_index"]
    frames = list(recorded["frames"])
    probabilities = []
    for frame in propagator.iter_probabilities(frames, {0: labels[0]}):
        assert frame.object_ids == tuple(range(1, OBJECTS + 1))
        probabilities.append(frame.probabilities[:, px][:, :, px])
    ours = np.stack(probabilities)[1:]
    official = recorded["video_probs"][1:]  # frame 0 is the given mask on both sides
    difference = float(np.abs(ours - official).max())
    print(f"video probabilities, frames 1..{len(frames) - 1}: max abs difference {difference:.1e}")
    assert difference <= TOLERANCE


def _permute_inputs(state: dict[str, torch.Tensor], prefix: str, blocks: list[int]) -> dict[str, torch.Tensor]:
    """`state` with the input channels of conv `prefix` (and its shortcut conv) reordered: its concatenated
    parts (sizes `blocks`, in the official order) reversed, as a converter assuming the other order would."""
    state = dict(state)
    for key in (f"{prefix}.conv1.weight", f"{prefix}.downsample.weight", f"{prefix}.weight"):
        if key in state:
            parts = torch.split(state[key], blocks, dim=1)
            state[key] = torch.cat(parts[::-1], dim=1)
    return state


TRAPS: dict[str, tuple[Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]], str]] = {
    # STCN's value fusion is [value, key f16] in corrvos's reading; XMem's is [key f16, value] on both sides
    "value fusion order": (lambda s: _permute_inputs(s, "value_encoder.fuser.block1", [1024, 256]), "value_0"),
    "decoder entry order": (lambda s: _permute_inputs(s, "decoder.fuser.block1", [1024, 512 + 64]), "prob_1"),
    "readout / hidden order": (lambda s: _permute_inputs(s, "decoder.fuser.block1", [1024 + 512, 64]), "prob_1"),
    "deep update input order": (lambda s: _permute_inputs(s, "value_encoder.hidden_reinforce.transform", [512, 64]),
                                "hidden_after_value_0"),
    "hidden update input order": (lambda s: _permute_inputs(s, "decoder.hidden_update.transform", [256, 64]),
                                  "hidden_after_segment_1"),
    "logit channel of the stride-4 hidden input": (lambda s: _permute_inputs(s, "decoder.hidden_update.g4_conv", [256, 1]),
                                                  "hidden_after_segment_1"),
    "mask / other-objects channels": (lambda s: _permute_inputs(s, "value_encoder.conv1", [3, 1, 1]), "value_0"),
    "GRU gate order": (lambda s: {**s, "decoder.hidden_update.transform.weight":
                                  torch.cat(s["decoder.hidden_update.transform.weight"].chunk(3)[::-1]),
                                  "decoder.hidden_update.transform.bias":
                                  torch.cat(s["decoder.hidden_update.transform.bias"].chunk(3)[::-1])},
                       "hidden_after_segment_1"),
    "BatchNorm statistics dropped": (lambda s: {k: (torch.zeros_like(v) if k.endswith("running_mean") else
                                                    torch.ones_like(v) if k.endswith("running_var") else v)
                                                for k, v in s.items()}, "key_0"),
}


@pytest.mark.parametrize("trap", sorted(TRAPS))
def test_each_trap_breaks_parity(trap: str, model: torch.nn.Module, official: dict[str, torch.Tensor],
                                 recorded: dict[str, np.ndarray]) -> None:
    """A converter that made this mistake would load without error and compute the wrong stage."""
    mutate, stage = TRAPS[trap]
    with _loaded(model, xmem.convert(mutate(official)).state_dict):
        last = 0 if stage.endswith("_0") else 1
        difference = _differences(corrvos_stages(model, recorded, last=last), recorded)[stage]
    assert difference > WRONG, f"{trap}: {stage} moved by only {difference:.1e}"


def test_training_layouts_and_module_prefix_convert_alike(official: dict[str, torch.Tensor],
                                                          imported: ImportedWeights) -> None:
    prefixed = {f"module.{k}": v for k, v in official.items()}
    training = {"it": 1000, "network": official, "optimizer": {}, "scheduler": {}}
    for variant in (prefixed, training):
        converted = xmem.convert(variant)
        assert converted.state_dict.keys() == imported.state_dict.keys()
        assert all(converted.state_dict[k] is imported.state_dict[k] or torch.equal(converted.state_dict[k], v)
                   for k, v in imported.state_dict.items())


def test_stage0_value_conv1_is_zero_padded_as_the_official_eval(official: dict[str, torch.Tensor]) -> None:
    """A single-object checkpoint's 4-channel conv1 gains a zero other-objects channel, last."""
    conv1 = official["value_encoder.conv1.weight"]
    converted = xmem.convert({**official, "value_encoder.conv1.weight": conv1[:, :4].clone()})
    padded = converted.state_dict["value_encoder.trunk.conv1.weight"]
    assert padded.shape == conv1.shape
    assert torch.equal(padded[:, :4], conv1[:, :4]) and torch.count_nonzero(padded[:, 4]) == 0
    assert any("zero-padded" in note for note in converted.notes)


def test_without_step_counters_they_are_zero(official: dict[str, torch.Tensor]) -> None:
    converted = xmem.convert({k: v for k, v in official.items() if not k.endswith("num_batches_tracked")})
    assert converted.state_dict["key_encoder.bn1.num_batches_tracked"].item() == 0


@pytest.mark.parametrize("change, named", [
    (lambda s: {k: v for k, v in s.items() if k != "decoder.up_8_4.out_conv.conv2.bias"}, "decoder.up_8_4.out_conv.conv2.bias"),
    (lambda s: {**s, "value_encoder.layer4.0.conv1.weight": torch.zeros(1)}, "value_encoder.layer4.0.conv1.weight"),
    (lambda s: {**s, "fancy_head.weight": torch.zeros(1)}, "fancy_head.weight"),
    (lambda s: {**s, "decoder.pred.weight": torch.zeros(1, 256, 1, 1)}, "decoder.pred.weight"),
    (lambda s: {k: v for k, v in s.items() if not k.startswith("decoder.hidden_update.")}, "decoder.hidden_update.transform.weight"),
    (lambda s: {**s, "key_proj.key_proj.weight": "not a tensor"}, "key_proj.key_proj.weight"),
])
def test_a_key_that_does_not_fit_is_one_error_naming_it(change, named: str, official: dict[str, torch.Tensor]) -> None:
    with pytest.raises(CorrvosError) as error:
        xmem.convert(change(official))
    assert named in str(error.value) and "\n" not in str(error.value)


def test_renames_cover_every_official_key(official: dict[str, torch.Tensor], imported: ImportedWeights) -> None:
    """One official entry per corrvos entry, and the names that differ are the documented renames."""
    renamed = {xmem.rename_key(k) for k in official}
    assert renamed == set(imported.state_dict)
    assert xmem.rename_key("key_proj.d_proj.weight") == "key_proj.shrinkage.weight"
    assert xmem.rename_key("key_proj.e_proj.bias") == "key_proj.selection.bias"
    assert xmem.rename_key("value_encoder.hidden_reinforce.transform.weight") == "hidden_reinforce.transform.weight"
    assert xmem.rename_key("decoder.fuser.attention.ChannelGate.mlp.3.weight") == "decoder.fuse.attention.channel_gate.mlp.2.weight"
