"""XMem propagation: memory schedule, late objects, sensory memory, bounded memory on a long video."""

import numpy as np
import pytest
import torch

from components.config import InferenceConfig, ModelConfig, config_from_dict
from components.config.schema import XMemMemoryConfig
from components.inference import VideoPropagator, XMemPropagator, propagator_for
from components.model import XMem, build_network
from tests.inference.test_propagate import _video


@pytest.fixture(scope="module")
def model() -> XMem:
    torch.manual_seed(0)
    return build_network(config_from_dict(ModelConfig, {"preset": "small", "name": "xmem"})).eval()


def test_propagator_follows_the_network(model):
    stcn = build_network(config_from_dict(ModelConfig, {"preset": "small"}))
    assert type(propagator_for(stcn, InferenceConfig())) is VideoPropagator
    assert isinstance(propagator_for(model, InferenceConfig()), XMemPropagator)


def test_first_frame_is_its_mask_and_memory_every_n(model):
    video, first = _video(8)
    result = propagator_for(model, InferenceConfig(memory_every=3)).propagate(video, {0: first})
    assert np.array_equal(result.labels[0], first)
    assert len(result.labels) == 8 and set(np.unique(np.concatenate(result.labels))) <= {0, 1, 2}
    assert result.memory_frames == [0, 3, 6]
    again = propagator_for(model, InferenceConfig(memory_every=3)).propagate(video, {0: first})
    assert all(np.array_equal(a, b) for a, b in zip(result.labels, again.labels))


def test_a_late_object_joins_with_an_empty_sensory_memory(model):
    video, first = _video(10)
    late = np.zeros_like(first)
    late[2:8, 60:68] = 3
    propagator = propagator_for(model, InferenceConfig())
    state = propagator._new_state()
    labels = list(propagator.iter_labels(video, {0: first, 6: late}, state))
    assert state.object_ids == [1, 2, 3]
    assert all(3 not in np.unique(lab) for lab in labels[:6])
    assert np.all(labels[6][2:8, 60:68] == 3)
    assert 6 in state.memory_frames and state.hidden.shape[1] == 3


def test_memory_stays_under_its_caps_on_a_long_video(model):
    """Consolidation into long-term prototypes and eviction keep the memory bounded at any length."""
    video, first = _video(60, h=32, w=32, seed=1)
    caps = XMemMemoryConfig(top_k=30, work_min_frames=2, work_max_frames=3, long_term_max=16, num_prototypes=4)
    propagator = propagator_for(model, InferenceConfig(memory_every=1, xmem=caps))
    state = propagator._new_state()
    sizes = []
    for _ in propagator.iter_labels(video, {0: first}, state):
        sizes.append((len(state.memory.working_frames), state.memory.long_term_size))
    assert len(state.memory_frames) == 60  # every frame entered memory ...
    assert max(w for w, _ in sizes) <= 3 and max(lt for _, lt in sizes) <= 16  # ... and the caps held
    assert max(lt for _, lt in sizes) > 8  # consolidation happened, and eviction had work to do
    assert state.memory.working_frames[0] == 0  # the given first frame is never consolidated
