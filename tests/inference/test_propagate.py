"""The propagation engine: memory schedule, top-k, geometry, late objects, memory cap, determinism."""

import numpy as np
import pytest
import torch

from components.config import InferenceConfig, ModelConfig, config_from_dict
from components.errors import DataError
from components.inference import FrameGeometry, MemoryStore, VideoPropagator
from components.model import STCN


@pytest.fixture(scope="module")
def model() -> STCN:
    torch.manual_seed(0)
    return STCN(config_from_dict(ModelConfig, {"preset": "small"})).eval()


def _video(frames: int = 12, h: int = 50, w: int = 70, seed: int = 0):
    rng = np.random.default_rng(seed)
    video = [rng.integers(0, 255, (h, w, 3), dtype=np.uint8) for _ in range(frames)]
    first = np.zeros((h, w), np.uint8)
    first[10:20, 10:30] = 1
    first[30:40, 40:60] = 2
    return video, first


def _run(model, config: InferenceConfig, video, annotations):
    return VideoPropagator(model, config).propagate(video, annotations)


def test_memory_schedule_every_n_frames(model):
    video, first = _video(12)
    assert _run(model, InferenceConfig(memory_every=5), video, {0: first}).memory_frames == [0, 5, 10]
    assert _run(model, InferenceConfig(memory_every=3), video, {0: first}).memory_frames == [0, 3, 6, 9]


def test_first_frame_output_is_its_mask_and_all_frames_are_labelled(model):
    video, first = _video(6)
    result = _run(model, InferenceConfig(), video, {0: first})
    assert np.array_equal(result.labels[0], first)
    assert len(result.labels) == 6 and all(lab.shape == first.shape for lab in result.labels)
    assert set(np.unique(np.concatenate(result.labels))) <= {0, 1, 2}
    assert result.fps > 0


def test_top_k_with_k_at_least_the_memory_equals_the_full_read(model):
    video, first = _video(8)
    full = _run(model, InferenceConfig(top_k=None, memory_every=1), video, {0: first})
    everything = _run(model, InferenceConfig(top_k=10_000, memory_every=1), video, {0: first})
    small = _run(model, InferenceConfig(top_k=1, memory_every=1), video, {0: first})
    assert all(np.array_equal(a, b) for a, b in zip(full.labels, everything.labels))
    assert any(not np.array_equal(a, b) for a, b in zip(full.labels, small.labels))


def test_objects_entering_late_join_at_their_first_mask(model):
    video, first = _video(10)
    late = np.zeros_like(first)
    late[2:8, 60:68] = 3
    result = _run(model, InferenceConfig(), video, {0: first, 6: late})
    assert result.object_ids == [1, 2, 3]
    assert all(3 not in np.unique(lab) for lab in result.labels[:6])
    assert np.all(result.labels[6][2:8, 60:68] == 3)  # the given mask wins where it labels pixels
    assert 6 in result.memory_frames


def _frame_values(frame: int, objects: int) -> torch.Tensor:
    """1,O,3,2,2 values that encode (frame, object, channel, y, x) in their digits."""
    o, c, y, x = torch.meshgrid(*(torch.arange(n) for n in (objects, 3, 2, 2)), indexing="ij")
    return (1000 * frame + 100 * o + 10 * c + 2 * y + x).float()[None]


def test_late_objects_read_only_memory_from_their_join_frame():
    store = MemoryStore()
    for frame, objects, permanent in ((0, 2, True), (5, 2, False), (6, 3, True), (10, 3, False)):
        store.add(frame, torch.full((1, 4, 2, 2), float(frame)), _frame_values(frame, objects), permanent=permanent)
    groups = store.groups([0, 0, 6])
    assert [(g[0].start, g[0].stop) for g in groups] == [(0, 2), (2, 3)]
    assert groups[0][1].shape == (1, 4, 4 * 4)  # objects of frame 0 read all four memory frames
    assert groups[1][1].shape == (1, 4, 2 * 4)  # the late object reads frames 6 and 10 only
    assert groups[1][1][0, 0].tolist() == [6.0] * 4 + [10.0] * 4
    rows = groups[0][2][0]  # N, 2 objects x 3 channels: element n = (frame, y, x), column = object * 3 + channel
    assert rows.shape == (16, 6)
    assert rows[4 * 1 + 2 * 1 + 0, 1 * 3 + 2].item() == 5000 + 100 + 20 + 2  # frame 5, y 1, x 0, object 1, channel 2
    assert groups[1][2][0, 4 + 3, 2].item() == 10000 + 200 + 20 + 2 + 1  # frame 10, y 1, x 1, object 2, channel 2


def test_the_last_frame_entry_is_read_once_and_replaced():
    store = MemoryStore()
    store.add(0, torch.zeros(1, 4, 2, 2), _frame_values(0, 1), permanent=True)
    store.set_last(1, torch.ones(1, 4, 2, 2), _frame_values(1, 1))
    store.set_last(2, 2 * torch.ones(1, 4, 2, 2), _frame_values(2, 1))
    (_, keys, rows), = store.groups([0])
    assert keys[0, 0].tolist() == [0.0] * 4 + [2.0] * 4 and rows[0, 4, 0].item() == 2000
    for frame in range(5, 30, 5):  # growing past the initial capacity keeps every frame's contents
        store.add(frame, torch.full((1, 4, 2, 2), float(frame)), _frame_values(frame, 1))
    (_, keys, rows), = store.groups([0])
    assert store.frame_indices == [0, 5, 10, 15, 20, 25]
    assert keys[0, 0, ::4].tolist() == [0.0, 5.0, 10.0, 15.0, 20.0, 25.0]
    assert rows[0, ::4, 0].tolist() == [0.0, 5000.0, 10000.0, 15000.0, 20000.0, 25000.0]


def test_eviction_keeps_time_order_and_contents():
    store = MemoryStore(max_frames=3)
    for frame in (0, 5, 10, 15):
        store.add(frame, torch.full((1, 4, 2, 2), float(frame)), _frame_values(frame, 1), permanent=frame == 0)
    (_, keys, rows), = store.groups([0])
    assert store.frame_indices == [0, 10, 15]
    assert rows[0, ::4, 0].tolist() == [0.0, 10000.0, 15000.0] and keys[0, 1, ::4].tolist() == [0.0, 10.0, 15.0]


def test_memory_cap_keeps_the_first_frame_and_drops_the_oldest_others(model):
    video, first = _video(9)
    propagator = VideoPropagator(model, InferenceConfig(memory_every=1, max_memory_frames=3))
    from components.inference.propagate import _VideoState

    state = _VideoState(memory=MemoryStore(3))
    list(propagator.iter_labels(video, {0: first}, state))
    assert state.memory.frame_indices == [0, 7, 8]
    assert state.memory_frames == list(range(9))  # all entered; the cap evicted


def test_repeated_runs_give_identical_output(model):
    video, first = _video(7)
    a = _run(model, InferenceConfig(), video, {0: first})
    b = _run(model, InferenceConfig(), video, {0: first})
    assert all(np.array_equal(x, y) for x, y in zip(a.labels, b.labels))


def test_resolution_cap_still_returns_full_size_masks(model):
    video, first = _video(4, h=96, w=128)
    result = _run(model, InferenceConfig(max_short_side=48), video, {0: first})
    assert result.labels[3].shape == (96, 128)
    assert np.array_equal(result.labels[0], first)


def test_geometry_pads_to_16_and_round_trips():
    geometry = FrameGeometry.for_size(50, 70)
    assert (geometry.inner_height, geometry.inner_width) == (50, 70)
    left, right, top, bottom = geometry.pad
    assert (50 + top + bottom) % 16 == 0 and (70 + left + right) % 16 == 0
    masks = torch.zeros(2, 50, 70)
    masks[0, 5:20, 3:9] = 1
    masks[1, 30:, 60:] = 1
    padded = geometry.masks_to_tensor(masks)
    assert padded.shape == (1, 2, 64, 80)
    assert torch.equal(geometry.probs_to_original(padded)[0], masks)


def test_geometry_downscales_the_short_side():
    geometry = FrameGeometry.for_size(480, 854, max_short_side=240)
    assert (geometry.inner_height, geometry.inner_width) == (240, 427)
    mask = torch.zeros(1, 480, 854)
    mask[0, 100:300, 200:600] = 1
    back = geometry.probs_to_original(geometry.masks_to_tensor(mask))[0, 0] > 0.5
    iou = (back & mask[0].bool()).sum() / (back | mask[0].bool()).sum()
    assert iou > 0.98


def test_geometry_upscales_a_short_side_below_the_minimum_and_shrinks_back():
    geometry = FrameGeometry.for_size(128, 96, min_short_side=224)
    assert (geometry.inner_height, geometry.inner_width) == (299, 224)
    assert FrameGeometry.for_size(300, 240, min_short_side=224).inner_height == 300  # already large enough
    mask = torch.zeros(1, 128, 96)
    mask[0, 20:70, 30:80] = 1
    up = geometry.masks_to_tensor(mask)
    assert up.shape[-2:] == (304, 224)
    assert torch.equal(geometry.probs_to_original(up)[0] > 0.5, mask > 0.5)
    frame = np.zeros((128, 96, 3), np.uint8)
    frame[:, 48:] = 255
    x = geometry.frame_to_tensor(frame, torch.device("cpu"))
    assert x.shape == (1, 3, 304, 224) and float(x.min()) == 0.0 and float(x.max()) == 1.0


def test_geometry_rejects_a_minimum_above_the_maximum():
    with pytest.raises(ValueError, match="min_short_side"):
        FrameGeometry.for_size(100, 100, max_short_side=64, min_short_side=96)
    with pytest.raises(ValueError, match="min_short_side"):
        InferenceConfig(max_short_side=64, min_short_side=96)


def test_upscaled_inference_returns_masks_at_the_video_size(model):
    video, first = _video(4, h=48, w=64)
    small = _run(model, InferenceConfig(), video, {0: first})
    large = _run(model, InferenceConfig(min_short_side=96), video, {0: first})
    assert large.labels[3].shape == (48, 64)
    assert np.array_equal(large.labels[0], first)
    # a finer grid is a different computation: the labels must differ somewhere
    assert any(not np.array_equal(a, b) for a, b in zip(small.labels[1:], large.labels[1:]))


def test_bf16_precision_runs_and_labels_stay_valid(model):
    video, first = _video(4)
    result = _run(model, InferenceConfig(precision="bf16"), video, {0: first})
    assert np.array_equal(result.labels[0], first)
    assert set(np.unique(np.concatenate(result.labels))) <= {0, 1, 2}


def test_bad_inputs_are_data_errors(model):
    video, first = _video(3)
    with pytest.raises(DataError, match="mask of frame 0"):
        _run(model, InferenceConfig(), video, {0: first[:40]})
    with pytest.raises(DataError, match="frame 2"):
        _run(model, InferenceConfig(), video[:2] + [video[2][:30]], {0: first})
    with pytest.raises(DataError, match="no annotated frame"):
        _run(model, InferenceConfig(), video, {})


def test_propagation_runs_on_a_stride_8_model():
    torch.manual_seed(0)
    fine = STCN(config_from_dict(ModelConfig, {"preset": "small", "output_stride": 8})).eval()
    video, first = _video(5)
    result = _run(fine, InferenceConfig(memory_every=2), video, {0: first})
    assert np.array_equal(result.labels[0], first)
    assert all(lab.shape == first.shape for lab in result.labels) and result.memory_frames == [0, 2, 4]
