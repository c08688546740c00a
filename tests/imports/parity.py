"""Test helpers: load a parity fixture and run corrvos's network and engine the way the official evaluation runs."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import torch

from components.config import InferenceConfig, config_from_dict
from components.config.schema import ModelConfig
from components.inference.propagate import VideoPropagator
from components.model.factory import build_network
from tools.parity.official_data import (
    FIXTURES,
    load_spec,
    random_official_state,
    synthetic_video,
)


@dataclass(frozen=True)
class Fixture:
    settings: dict[str, Any]
    official_state: dict[str, torch.Tensor]  # seeded weights in the official layout
    video: np.ndarray  # T,H,W,3 uint8
    first_mask: np.ndarray  # H,W ids
    probs: np.ndarray  # official object probabilities O,T-1,h',w' (every `stride`-th pixel, frames 1..)
    key0: np.ndarray  # official key of frame 0, Ck,h,w
    value0: np.ndarray  # official value of frame 0, first 16 channels, O,16,h,w


@lru_cache(maxsize=2)
def load_fixture(name: str) -> Fixture:
    """The recorded official outputs of `fixtures/<name>` and the inputs rebuilt from their seeds."""
    folder = FIXTURES / name
    settings = json.loads((folder / "spec.json").read_text())
    settings.pop("keys")
    state = random_official_state(load_spec(folder / "spec.json"), settings["seed"])
    video, mask = synthetic_video(settings["seed"], settings["frames"], settings["size"], settings["size"])
    with np.load(folder / "official.npz") as data:
        return Fixture(settings, state, video, mask, data["probs"], data["key0"], data["value0"])


@lru_cache(maxsize=2)
def network(entry: str) -> torch.nn.Module:
    """One corrvos STCN per decoder entry, built once; tests load weights into it."""
    from components.model.imports.stcn import MODEL_CONFIG

    torch.manual_seed(0)
    return build_network(config_from_dict(ModelConfig, {**MODEL_CONFIG, "decoder_entry": entry})).eval()


def loaded(state_dict: dict[str, torch.Tensor], entry: str) -> torch.nn.Module:
    """The network of `entry` holding `state_dict` (strict)."""
    model = network(entry)
    model.load_state_dict(state_dict, strict=True)
    return model


def official_settings(fixture: Fixture) -> InferenceConfig:
    """The official evaluation's propagation settings: fp32, top-k 20, a memory frame every 5, no last frame, zero padding."""
    return InferenceConfig(memory_every=fixture.settings["mem_every"], top_k=fixture.settings["top_k"],
                           include_last=False, precision="fp32", padding="zero")


def propagate(model: torch.nn.Module, fixture: Fixture, frames: int | None = None) -> np.ndarray:
    """corrvos's engine on the fixture video -> object probabilities O,T-1,H,W of frames 1.. (what the fixture holds)."""
    propagator = VideoPropagator(model, official_settings(fixture), "cpu")
    video = list(fixture.video[: frames or len(fixture.video)])
    out = [frame.probabilities[1:] for frame in propagator.iter_probabilities(video, {0: fixture.first_mask})]
    return np.stack(out[1:], axis=1)


def first_frame_encodings(model: torch.nn.Module, fixture: Fixture) -> tuple[np.ndarray, np.ndarray]:
    """(key Ck,h,w, value O,16,h,w) of frame 0 with its given masks: the stages the official run also recorded."""
    frame = torch.from_numpy(fixture.video[0]).permute(2, 0, 1)[None].float() / 255
    ids = fixture.settings["object_ids"]
    masks = torch.stack([torch.from_numpy(fixture.first_mask == i).float() for i in ids])[None]
    with torch.inference_mode():
        features = model.encode_key(frame)
        values = model.encode_value(frame, features.f16, masks)
    return features.key[0].numpy(), values[0, :, :16].numpy()


def max_diff(ours: np.ndarray, official: np.ndarray, stride: int | None = None) -> float:
    """Largest absolute difference; `stride` subsamples `ours` as the fixture was."""
    if stride:
        ours = ours[..., ::stride, ::stride]
    return float(np.abs(ours - official).max())
