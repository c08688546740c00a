"""`inference.preset: official`: the official STCN/XMem evaluation settings, zero padding of the
normalised frame, XMem consolidation when working memory reaches its cap, and official usage counting."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from components.config import InferenceConfig, ModelConfig, config_from_dict
from components.errors import ConfigError
from components.inference import XMemPropagator
from components.inference.frames import FrameGeometry
from components.inference.xmem_memory import XMemMemory, _Elements, _used_above_surplus
from components.model import build_network
from components.model.checkpoint import SCORED_WITH, ScoredSettings
from pipelines.commands.predict import inference_config

# hkchengrex/STCN eval_davis.py and hkchengrex/XMem eval.py defaults (XMem: --size -1 --benchmark, i.e. fp32)
OFFICIAL = {
    "memory_every": 5, "top_k": 20, "include_last": False, "max_memory_frames": None, "max_short_side": None,
    "min_short_side": None, "precision": "fp32", "padding": "zero", "consolidate_at": "reach",
    "usage_counting": "official",
}
OFFICIAL_XMEM = {"top_k": 30, "work_min_frames": 5, "work_max_frames": 10, "long_term_max": 10_000,
                 "num_prototypes": 128}


def _values(config: InferenceConfig) -> tuple[dict, dict]:
    flat = {k: getattr(config, k) for k in OFFICIAL}
    return flat, {k: getattr(config.xmem, k) for k in OFFICIAL_XMEM}


def test_official_preset_is_the_official_scripts_defaults() -> None:
    config = config_from_dict(InferenceConfig, {"preset": "official"}, "inference")
    assert _values(config) == (OFFICIAL, OFFICIAL_XMEM)
    default = InferenceConfig()  # corrvos's own defaults stay: replicate padding, consolidate on exceed, auto precision
    assert (default.preset, default.padding, default.consolidate_at, default.usage_counting, default.precision) == (
        "corrvos", "replicate", "exceed", "corrvos", "auto")
    tuned = config_from_dict(InferenceConfig, {"preset": "official", "top_k": 50}, "inference")
    assert tuned.top_k == 50 and tuned.padding == "zero"  # explicit keys win over the preset


def test_set_preset_official_in_predict_replaces_stored_settings() -> None:
    stored = InferenceConfig(top_k=50, precision="bf16", memory_every=3)
    assert _values(inference_config(["inference.preset=official"], stored)) == (OFFICIAL, OFFICIAL_XMEM)
    on_top = inference_config(["inference.preset=official", "inference.top_k=7"], stored)
    assert on_top.top_k == 7 and on_top.precision == "fp32" and on_top.memory_every == 5
    assert inference_config(["inference.top_k=7"], stored).precision == "bf16"  # no preset: stored settings kept
    with pytest.raises(ConfigError, match="inference.preset"):
        inference_config(["inference.preset=offical"])


def test_settings_stored_before_the_new_keys_still_load() -> None:
    old = {"memory_every": 5, "top_k": 20, "include_last": False, "max_memory_frames": None, "max_short_side": None,
           "min_short_side": None, "precision": "auto", "xmem": OFFICIAL_XMEM}
    loaded = ScoredSettings.from_metadata({SCORED_WITH: {"inference": old, "jf": 0.5}}).inference
    assert (loaded.preset, loaded.padding, loaded.consolidate_at, loaded.usage_counting) == (
        "corrvos", "replicate", "exceed", "corrvos")
    official = config_from_dict(InferenceConfig, {"preset": "official"})
    assert ScoredSettings.from_metadata({SCORED_WITH: ScoredSettings(official).to_metadata()}).inference == official


@pytest.mark.parametrize("height, width", [(40, 54), (37, 64)])
def test_zero_padding_is_zero_after_the_networks_normalisation(height: int, width: int) -> None:
    """The official code pads the normalised frame with zeros; replicate padding differs by up to 9e-3."""
    model = build_network(config_from_dict(ModelConfig, {"preset": "small"}))
    frame = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    geometry = FrameGeometry.for_size(height, width, padding="zero")
    left, right, top, bottom = geometry.pad
    assert left + right + top + bottom > 0
    normalised = model.normalise(geometry.frame_to_tensor(frame, torch.device("cpu")))
    inside = torch.zeros_like(normalised, dtype=torch.bool)
    inside[:, :, top : top + height, left : left + width] = True
    assert torch.equal(normalised[~inside], torch.zeros_like(normalised[~inside]))  # exactly 0
    unpadded = model.normalise(torch.from_numpy(frame).permute(2, 0, 1)[None].float() / 255.0)
    assert torch.equal(normalised[:, :, top : top + height, left : left + width], unpadded)
    replicated = model.normalise(FrameGeometry.for_size(height, width).frame_to_tensor(frame, torch.device("cpu")))
    assert replicated[~inside].abs().max() > 0.1  # the two modes differ, so the test above can fail


def _add(memory: XMemMemory, index: int, g: torch.Generator, read: bool = True) -> None:
    """Add a random frame, then (if `read`) read memory with a random query."""
    key, values = torch.randn(1, 8, 4, 4, generator=g), torch.randn(1, 1, 4, 4, 4, generator=g)
    memory.add(index, key, 1 + torch.rand(1, 1, 4, 4, generator=g), torch.rand(1, 8, 4, 4, generator=g), values)
    if read:
        memory.read(torch.randn(1, 8, 4, 4, generator=g), torch.rand(1, 8, 4, 4, generator=g), 1)


def test_official_consolidates_when_working_memory_reaches_its_cap() -> None:
    """Official XMem consolidates on the memory frame that fills working memory; corrvos on the next one."""
    g = torch.Generator().manual_seed(0)
    reach = XMemMemory(work_min_frames=2, work_max_frames=4, num_prototypes=4, consolidate_at="reach")
    exceed = XMemMemory(work_min_frames=2, work_max_frames=4, num_prototypes=4)
    for index in range(3):
        state = g.get_state()
        _add(reach, index, g)
        g.set_state(state)
        _add(exceed, index, g)
    assert reach.long_term_size == exceed.long_term_size == 0
    state = g.get_state()
    _add(reach, 3, g)
    g.set_state(state)
    _add(exceed, 3, g)
    assert reach.working_frames == [0, 3] and reach.long_term_size == 4  # reached 4 frames: consolidated now
    assert exceed.working_frames == [0, 1, 2, 3] and exceed.long_term_size == 0
    _add(exceed, 4, g)
    assert exceed.working_frames == [0, 4] and exceed.long_term_size == 4


def test_official_preset_reaches_the_xmem_memory() -> None:
    torch.manual_seed(0)
    model = build_network(config_from_dict(ModelConfig, {"preset": "small", "name": "xmem"})).eval()
    official = XMemPropagator(model, config_from_dict(InferenceConfig, {"preset": "official"}))._new_state().memory
    default = XMemPropagator(model, InferenceConfig())._new_state().memory
    assert (official.consolidate_at, official.official_usage, official.top_k) == ("reach", True, 30)
    assert (default.consolidate_at, default.official_usage) == ("exceed", False)


def test_official_usage_counting_starts_unused_and_evicts_before_adding() -> None:
    """New elements (frames and prototypes) start at usage 0 with life 1e-7; a long-term memory at
    `long_term_max - num_prototypes` keeps the elements used more than its surplus, then adds every prototype."""
    g = torch.Generator().manual_seed(1)
    memory = XMemMemory(work_min_frames=1, work_max_frames=2, long_term_max=5, num_prototypes=2, top_k=3,
                        consolidate_at="reach", usage_counting="official")
    _add(memory, 0, g)
    elements = memory._elements
    assert torch.equal(elements.life, torch.full((16,), 1e-7) + 1)  # one read since entering at 1e-7
    memory.add(1, *(torch.randn(1, 8, 4, 4, generator=g), torch.ones(1, 1, 4, 4), torch.ones(1, 8, 4, 4),
                    torch.randn(1, 1, 4, 4, 4, generator=g)))
    long_term = memory._elements.take(torch.arange(memory.long_term_size))
    assert memory.long_term_size == 2 and torch.equal(long_term.usage, torch.zeros(2))
    assert torch.equal(long_term.life, torch.full((2,), 1e-7))
    sizes = []
    for index in range(2, 14):  # every frame added fills working memory (1..2 frames): one consolidation each
        _add(memory, index, g, read=False)
        sizes.append(memory.long_term_size)
        newest = memory._elements.take(torch.arange(memory.long_term_size - 2, memory.long_term_size))
        assert torch.equal(newest.usage, torch.zeros(2))  # this consolidation's prototypes: all kept, unused
        assert torch.equal(newest.life, torch.full((2,), 1e-7))
        memory.read(torch.randn(1, 8, 4, 4, generator=g), torch.rand(1, 8, 4, 4, generator=g), 1)
    assert max(sizes) <= 5 and sizes[0] == 4 and min(sizes) >= 2  # 2, 4, then evictions before each new pair keep it at most 5


def test_official_eviction_keeps_only_elements_used_more_than_the_surplus() -> None:
    usage = torch.tensor([0.5, 0.1, 0.3, 0.1, 0.7])
    n = usage.shape[0]
    elements = _Elements(torch.arange(n, dtype=torch.float32)[:, None], torch.ones(n), torch.ones(n, 1),
                         torch.zeros(n, 1, 1), torch.ones(n, 1, dtype=torch.bool), usage, torch.ones(n))
    kept = _used_above_surplus(elements, 4)  # one to drop: the least used, and its tie goes too
    assert kept.key.flatten().tolist() == [0.0, 2.0, 4.0]
    assert _used_above_surplus(elements, 5).size == 5
