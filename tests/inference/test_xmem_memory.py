"""XMem's inference memory: reads match the dense maths, late objects stay apart, memory stays bounded."""

import pytest
import torch

from components.inference import xmem_memory
from components.inference.xmem_memory import XMemMemory, _Elements, _most_used, _prototypes
from components.model import memory_read
from tests.memory_reference import brute_read, brute_similarity, brute_weights

CK, CV, H, W = 8, 4, 4, 4
HW = H * W


def _generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _frame(g: torch.Generator, objects: int, key_scale: float = 1.0, unit: bool = False):
    """key, shrinkage, selection, values of one frame (shrinkage = selection = 1 when `unit`)."""
    key = key_scale * torch.randn(1, CK, H, W, generator=g)
    shrinkage = torch.ones(1, 1, H, W) if unit else 1 + torch.rand(1, 1, H, W, generator=g)
    selection = torch.ones(1, CK, H, W) if unit else torch.rand(1, CK, H, W, generator=g)
    values = torch.randn(1, objects, CV, H, W, generator=g)
    return key, shrinkage, selection, values


def _query_at(key: torch.Tensor, positions: list[int]) -> torch.Tensor:
    """A query frame whose every position copies the key at one of `positions` (cycling): it reads those."""
    flat = key.flatten(start_dim=2)
    picks = torch.tensor(positions).repeat(HW // len(positions) + 1)[:HW]
    return flat[:, :, picks].view(1, CK, H, W)


@pytest.mark.parametrize("kwargs", [
    {"work_min_frames": 0}, {"work_min_frames": 3, "work_max_frames": 3}, {"num_prototypes": 0},
    {"num_prototypes": 16, "long_term_max": 16}, {"top_k": 0},
])
def test_rejects_bad_settings(kwargs) -> None:
    with pytest.raises(ValueError):
        XMemMemory(**kwargs)


def test_rejects_bad_frames_and_queries() -> None:
    g = _generator()
    memory = XMemMemory()
    key, shrinkage, selection, values = _frame(g, 2)
    with pytest.raises(ValueError, match="empty"):
        memory.read(key, selection, 1)
    with pytest.raises(ValueError, match="shrinkage"):
        memory.add(0, key, shrinkage[:, :, :3], selection, values)
    memory.add(0, key, shrinkage, selection, values)
    with pytest.raises(ValueError, match="query key"):
        memory.read(key[..., :3], selection[..., :3], 2)
    with pytest.raises(ValueError, match="frame is"):
        memory.add(5, key[..., :3], shrinkage[..., :3], selection[..., :3], values[..., :3])
    with pytest.raises(ValueError, match="already known"):
        memory.add(5, key, shrinkage, selection, values[:, :1])
    with pytest.raises(ValueError, match="channels"):
        memory.add(5, key, shrinkage, selection, values[:, :, :2])
    assert memory.working_frames == [0]


@pytest.mark.parametrize(("objects", "top_k"), [(1, 20), (3, 20), (2, 5), (2, 1), (2, None), (2, 10_000)])
def test_unit_shrinkage_and_selection_read_like_stcn(objects, top_k) -> None:
    g = _generator(objects)
    frames = [_frame(g, objects, unit=True) for _ in range(3)]
    memory = XMemMemory(top_k=top_k)
    for t, (key, shrinkage, selection, values) in enumerate(frames):
        memory.add(5 * t, key, shrinkage, selection, values)
    query = torch.randn(1, CK, H, W, generator=g)
    got = memory.read(query, torch.ones_like(query), objects)
    keys = torch.stack([f[0] for f in frames], dim=2)  # 1, Ck, T, h, w
    values = torch.stack([f[3] for f in frames], dim=3)  # 1, O, Cv, T, h, w
    expected = brute_read(keys, values, query, top_k)  # STCN's read by definition
    assert got.shape == (1, objects, CV, H, W)
    torch.testing.assert_close(got.double(), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("top_k", [7, None])
def test_read_equals_the_dense_anisotropic_read(top_k, monkeypatch) -> None:
    g = _generator(3)
    frames = [_frame(g, 2) for _ in range(3)]
    memory = XMemMemory(top_k=top_k)
    for t, (key, shrinkage, selection, values) in enumerate(frames):
        memory.add(t, key, shrinkage, selection, values)
    query, query_selection = torch.randn(1, CK, H, W, generator=g), torch.rand(1, CK, H, W, generator=g)
    keys = torch.cat([f[0].flatten(start_dim=2) for f in frames], dim=2)  # 1, Ck, N
    shrinkage = torch.cat([f[1].flatten() for f in frames])[None, :, None]  # 1, N, 1
    values = torch.cat([f[3].flatten(start_dim=3) for f in frames], dim=3)  # 1, O, Cv, N
    flat_query, flat_selection = query.flatten(start_dim=2), query_selection.flatten(start_dim=2)  # 1, Ck, HW
    weights = brute_weights(brute_similarity(keys, shrinkage, flat_query, flat_selection), top_k)  # 1, N, HW
    expected = torch.einsum("bocn,bnq->bocq", values, weights).view(1, 2, CV, H, W)
    torch.testing.assert_close(memory.read(query, query_selection, 2), expected, rtol=1e-5, atol=1e-5)
    monkeypatch.setattr(memory_read, "CPU_GATHER_ELEMENTS", 3 * 7 * 2 * CV)  # blocks of 3 queries
    torch.testing.assert_close(memory.read(query, query_selection, 2), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("top_k", [3, None])
def test_a_late_object_reads_only_elements_that_hold_it(top_k) -> None:
    """Object 1 joins at frame 15 with the constant value 3; object 0 is huge. Object 1 must read exactly 3,
    also from prototypes consolidated before it joined (which hold nothing for it) and after."""
    g = _generator(4)
    memory = XMemMemory(work_min_frames=1, work_max_frames=2, num_prototypes=4, top_k=top_k)
    first_key = None
    for t in range(0, 30, 5):
        key, shrinkage, selection, values = _frame(g, 1 if t < 15 else 2)
        values[:, 0] = 1e6
        if t >= 15:
            values[:, 1] = 3.0
        first_key = key if first_key is None else first_key
        memory.add(t, key, shrinkage, selection, values)
        query = first_key + 0.01 * torch.randn(1, CK, H, W, generator=g)  # nearest to frame 0, which lacks object 1
        readout = memory.read(query, torch.rand(1, CK, H, W, generator=g), 3)
        assert readout.shape == (1, 3, CV, H, W)
        assert (readout[:, 2] == 0).all()  # a slot nobody holds reads zeros
        if t >= 15:
            torch.testing.assert_close(readout[:, 1], torch.full_like(readout[:, 1], 3.0))
    assert memory.working_frames == [0, 15] and memory.long_term_size == 12  # at frames 10 (without object 1), 20, 25


@pytest.fixture
def single_thread():
    """Hundreds of reads on 4x4 frames: thread hand-offs would cost more than the maths, more so on a busy CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_memory_stays_bounded_on_a_long_video(single_thread) -> None:
    g = _generator(5)
    memory = XMemMemory(work_min_frames=2, work_max_frames=4, long_term_max=64, num_prototypes=16, top_k=5)
    long_term_sizes = set()
    for t in range(300):
        objects = 1 if t < 100 else 2  # the second object joins at frame 100: a permanent frame too
        memory.add(t, *_frame(g, objects), permanent=t == 0)
        assert len(memory.working_frames) <= 4
        assert memory.long_term_size <= 64
        assert memory.working_frames[0] == 0 and (t < 100 or 100 in memory.working_frames)
        assert memory.working_size == HW * len(memory.working_frames)
        assert memory.size == memory.working_size + memory.long_term_size
        long_term_sizes.add(memory.long_term_size)
        key, _, selection, _ = _frame(g, 1)
        readout = memory.read(key, selection, 2)
        assert torch.isfinite(readout).all()
    assert max(long_term_sizes) > 64 - 16  # eviction was reached, not just consolidation


def test_consolidation_keeps_the_most_used_elements() -> None:
    """Reads hit 3 positions of frame 1; with far-apart keys those become prototypes that hold their own values."""
    g = _generator(6)
    memory = XMemMemory(work_min_frames=2, work_max_frames=3, num_prototypes=3, top_k=1)
    frames = [_frame(g, 1, key_scale=10.0) for _ in range(4)]
    used = [2, 7, 11]
    for t, frame in enumerate(frames):
        memory.add(t, *frame)
        for _ in range(3):
            memory.read(_query_at(frames[1][0], used), torch.ones(1, CK, H, W), 1)
    assert memory.working_frames == [0, 3] and memory.long_term_size == 3
    key1, values1 = frames[1][0].flatten(start_dim=2), frames[1][3].flatten(start_dim=3)  # 1,Ck,HW; 1,O,Cv,HW
    for position in range(HW):
        query = key1[:, :, position, None, None].expand(1, CK, H, W)
        readout = memory.read(query, torch.ones_like(query), 1)[0, 0, :, 0, 0]
        close = torch.allclose(readout, values1[0, 0, :, position], atol=1e-5)
        assert close == (position in used), position


def _candidates(g: torch.Generator, n: int = 40, objects: int = 2) -> _Elements:
    values = torch.randn(n, objects, CV, generator=g)
    valid = torch.ones(n, objects, dtype=torch.bool)
    valid[: n // 2, 1] = False  # object 1 joined halfway
    values[: n // 2, 1] = 1e6  # so a leak would show
    return _Elements(
        key=torch.randn(n, CK, generator=g), shrinkage=1 + torch.rand(n, generator=g),
        selection=torch.rand(n, CK, generator=g), values=values, valid=valid,
        usage=10 * torch.rand(n, generator=g), life=torch.randint(1, 5, (n,), generator=g).float(),
    )


def test_prototypes_are_the_most_used_and_hold_convex_averages() -> None:
    candidates = _candidates(_generator(7))
    prototypes = _prototypes(candidates, 8)
    ratio = candidates.usage_ratio()
    top = ratio.topk(8).indices
    torch.testing.assert_close(prototypes.key, candidates.key[top])
    torch.testing.assert_close(prototypes.selection, candidates.selection[top])
    assert prototypes.valid.all() and (prototypes.life == 1).all() and prototypes.usage.dtype == torch.float32
    for slot, holders in [(0, slice(None)), (1, slice(20, None))]:
        held = candidates.values[holders, slot]  # N_slot, Cv
        assert (prototypes.values[:, slot] >= held.amin(dim=0) - 1e-5).all()
        assert (prototypes.values[:, slot] <= held.amax(dim=0) + 1e-5).all()
    assert (prototypes.shrinkage >= candidates.shrinkage.min() - 1e-5).all()
    assert (prototypes.shrinkage <= candidates.shrinkage.max() + 1e-5).all()
    assert (prototypes.usage > ratio.min()).all() and (prototypes.usage < ratio.max()).all()


def test_prototypes_of_frames_without_an_object_do_not_hold_it() -> None:
    candidates = _candidates(_generator(8))
    before_join = candidates.take(torch.arange(20))
    prototypes = _prototypes(before_join, 50)  # more than there are: all 20 become prototypes
    assert prototypes.size == 20
    assert prototypes.valid[:, 0].all() and not prototypes.valid[:, 1].any()
    assert (prototypes.values[:, 1] == 0).all()


def test_eviction_drops_the_lowest_usage_ratio_first() -> None:
    candidates = _candidates(_generator(9), n=6)
    candidates.usage = torch.tensor([5.0, 1.0, 8.0, 3.0, 0.0, 6.0])
    candidates.life = torch.tensor([1.0, 1.0, 4.0, 1.0, 1.0, 6.0])  # ratios 5, 1, 2, 3, 0, 1: raw usage would differ
    kept = _most_used(candidates, 3)
    torch.testing.assert_close(kept.key, candidates.key[[0, 2, 3]])


def test_eviction_in_memory_keeps_what_reads_still_use() -> None:
    """Four prototypes from frame 1; reads then hit only two. The next consolidation overflows long-term
    memory (8 > 6), which keeps 6 - 4 = 2: the two still in use, not the unused new ones."""
    g = _generator(10)
    memory = XMemMemory(work_min_frames=1, work_max_frames=2, long_term_max=6, num_prototypes=4, top_k=1)
    frames = [_frame(g, 1, key_scale=10.0) for _ in range(5)]
    ones = torch.ones(1, CK, H, W)
    memory.add(0, *frames[0])
    memory.add(1, *frames[1])
    for _ in range(3):
        memory.read(_query_at(frames[1][0], [1, 4, 9, 13]), ones, 1)
    memory.add(2, *frames[2])
    assert memory.working_frames == [0] and memory.long_term_size == 4
    for t in (3, 4):
        for _ in range(5):
            memory.read(_query_at(frames[1][0], [4, 13]), ones, 1)
        memory.add(t, *frames[t])
    assert memory.working_frames == [0] and memory.long_term_size == 2
    key1, values1 = frames[1][0].flatten(start_dim=2), frames[1][3].flatten(start_dim=3)
    for position in (1, 4, 9, 13):
        query = key1[:, :, position, None, None].expand(1, CK, H, W)
        readout = memory.read(query, ones, 1)[0, 0, :, 0, 0]
        assert torch.allclose(readout, values1[0, 0, :, position], atol=1e-5) == (position in (4, 13)), position


def test_usage_and_life_accumulate_per_read() -> None:
    g = _generator(11)
    memory = XMemMemory(top_k=4)
    memory.add(0, *_frame(g, 1))
    memory.add(5, *_frame(g, 2))
    for _ in range(3):
        key, _, selection, _ = _frame(g, 1)
        memory.read(key, selection, 2)
    elements = memory._elements
    assert elements.usage.dtype == torch.float32 and (elements.life == 3).all()
    torch.testing.assert_close(elements.usage.sum(), torch.tensor(3.0 * HW))  # each query hands out weight 1


def test_permanent_frames_beyond_the_cap_stay_and_the_rest_is_consolidated() -> None:
    g = _generator(12)
    memory = XMemMemory(work_min_frames=1, work_max_frames=2, num_prototypes=4)
    for t in range(4):
        memory.add(t, *_frame(g, 1 + t))  # every frame brings an object: permanent without being told
    memory.add(4, *_frame(g, 4))
    assert memory.working_frames == [0, 1, 2, 3] and memory.long_term_size == 4


def test_low_precision_under_autocast_stays_in_its_dtype() -> None:
    """bf16 inputs (adds and consolidations under autocast too) read close to fp32; usage stays fp32."""
    g = _generator(13)
    caps = {"work_min_frames": 1, "work_max_frames": 2, "num_prototypes": 4, "top_k": 5}
    reference, low = XMemMemory(**caps), XMemMemory(**caps)
    for t in range(5):
        key, shrinkage, selection, values = _frame(g, 2)
        reference.add(t, key, shrinkage, selection, values)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low.add(t, key.bfloat16(), shrinkage.bfloat16(), selection.bfloat16(), values.bfloat16())
    assert low.long_term_size == reference.long_term_size == 8
    query, query_selection = torch.randn(1, CK, H, W, generator=g), torch.rand(1, CK, H, W, generator=g)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = low.read(query.bfloat16(), query_selection.bfloat16(), 2)
    assert got.dtype == torch.bfloat16 and low._elements.usage.dtype == torch.float32
    assert low._elements.values.dtype == torch.bfloat16
    torch.testing.assert_close(got.float(), reference.read(query, query_selection, 2), rtol=0.1, atol=0.1)
