"""The worker loader: ClipBatch contract, reproducibility, resume, rank shares, curriculum, static mode."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from components.config import config_from_dict
from components.data.config import DataConfig, IngestConfig
from components.data.ingest import ingest
from components.data.loader import CacheCounts, ClipLoader, DatasetRef
from components.errors import DataError
from tests.data.conftest import make_static_two_folders

SMALL = {"augment": {"crop_size": 48}, "static_augment": {"crop_size": 48}, "loader": {"num_workers": 2}}


@pytest.fixture(scope="module")
def synthetic_uri(tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("data") / "synthetic"
    ingest("synthetic", "videos=12,frames=16,size=64,seed=7", str(out), IngestConfig(engine="threads"), progress=False)
    return str(out)


def _config(**sections) -> DataConfig:
    merged = {k: {**SMALL.get(k, {}), **sections.get(k, {})} for k in {*SMALL, *sections}}
    return config_from_dict(DataConfig, merged)


def test_batches_follow_the_clip_batch_contract(synthetic_uri: str) -> None:
    with ClipLoader(synthetic_uri, 4, config=_config()) as loader:
        batches = list(loader.iterate(total_steps=3))
    assert len(batches) == 3
    for batch in batches:
        assert tuple(batch.frames.shape) == (4, 3, 3, 48, 48) and batch.frames.dtype == torch.float32
        assert 0.0 <= batch.frames.min() and batch.frames.max() <= 1.0 and batch.frames.is_contiguous()
        assert tuple(batch.masks.shape) == (4, 3, 2, 48, 48) and set(batch.masks.unique().tolist()) <= {0.0, 1.0}
        assert (batch.selector[:, 0] == 1).all()
        first = batch.masks[:, 0].sum(dim=(2, 3))  # B, O pixels of each object in the reference frame
        assert ((first > 0).float() == batch.selector).all()  # chosen objects are present in frame 0
        assert (batch.masks.sum(dim=2) <= 1).all()  # slots never overlap


def test_seeded_runs_are_reproducible_whatever_the_threads(synthetic_uri: str) -> None:
    def run(seed: int, workers: int) -> list[torch.Tensor]:
        with ClipLoader(synthetic_uri, 3, seed=seed, config=_config(loader={"num_workers": workers})) as loader:
            return [b.frames for b in loader.iterate(total_steps=4)]

    a, b, c = run(1, 2), run(1, 0), run(2, 2)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(a[0], c[0])


def test_resume_from_a_step_sees_the_same_batches(synthetic_uri: str) -> None:
    with ClipLoader(synthetic_uri, 2, seed=5, config=_config()) as loader:
        full = [b.masks for b in loader.iterate(total_steps=6)]
        resumed = [b.masks for b in loader.iterate(total_steps=6, start_step=4)]
    assert len(resumed) == 2 and torch.equal(full[4], resumed[0]) and torch.equal(full[5], resumed[1])


def test_ranks_read_disjoint_shares_that_cover_the_dataset(synthetic_uri: str) -> None:
    shares = []
    for rank in range(3):
        with ClipLoader(synthetic_uri, 2, rank=rank, world_size=3, config=_config()) as loader:
            seen = {loader.sample(step, i, 10).info["video"] for step in range(8) for i in range(2)}
            share = {name for _, name in loader.items}
            assert seen <= share
            shares.append(share)
    assert sum(len(s) for s in shares) == 12 and len(set.union(*shares)) == 12
    with pytest.raises(DataError, match="rank 12 of 13 gets no videos"):
        ClipLoader(synthetic_uri, 1, rank=12, world_size=13)


def test_every_video_once_per_epoch_and_repeat_weights(synthetic_uri: str) -> None:
    with ClipLoader(synthetic_uri, 4, config=_config()) as loader:
        epoch = [loader.sample(step, i, 100).info["video"] for step in range(3) for i in range(4)]
        assert len(set(epoch)) == 12
    with ClipLoader([DatasetRef(synthetic_uri, repeat=3)], 1, config=_config()) as loader:
        assert len(loader.items) == 36


def test_curriculum_controls_the_frame_gaps(synthetic_uri: str) -> None:
    with ClipLoader(synthetic_uri, 1, config=_config()) as loader:
        for step, skip in ((0, 5), (15, 10), (40, 15), (90, 5)):
            for i in range(6):
                info = loader.sample(step, i, 100).info
                assert info["max_skip"] == skip
                frames = info["frames"][::-1] if info["reversed"] else info["frames"]
                assert (np.diff(frames) >= 1).all() and (np.diff(frames) <= skip).all()


def test_youtube_vos_skips_are_divided_by_the_annotation_interval(ytvos: Path, tmp_path: Path) -> None:
    out = tmp_path / "yt"
    ingest("youtube-vos", str(ytvos), str(out), IngestConfig(engine="threads"), progress=False)
    with ClipLoader(str(out), 1, config=_config()) as loader:
        for i in range(20):
            info = loader.sample(0, i, 10).info  # max skip 5 = one stored frame
            assert np.abs(np.diff(info["frames"])).max() == 1


def test_static_datasets_give_pseudo_videos(tmp_path: Path, synthetic_uri: str) -> None:
    out = tmp_path / "static"
    ingest("static", str(make_static_two_folders(tmp_path / "duts")), str(out), IngestConfig(engine="threads"), progress=False)
    with ClipLoader(str(out), 2, config=_config()) as loader:
        batch = next(loader.iterate(total_steps=1))
    assert tuple(batch.frames.shape) == (2, 3, 3, 48, 48)
    assert batch.selector.tolist() == [[1.0, 0.0], [1.0, 0.0]]
    assert not torch.equal(batch.frames[:, 0], batch.frames[:, 1])  # per-frame deformation
    with ClipLoader(synthetic_uri, 2, config=_config(sampler={"mode": "static"})) as loader:
        clip = loader.sample(0, 0, 1)
    assert len(set(clip.info["frames"])) == 1 and clip.selector.sum() == 1
    xmem = _config(sampler={"preset": "xmem"})
    with ClipLoader(str(out), 2, config=xmem) as loader:  # XMem's static stage: still 3-frame pseudo-videos
        assert tuple(loader.batch(0, 1).frames.shape) == (2, 3, 3, 48, 48)
    with pytest.raises(ValueError, match="one clip shape"):
        ClipLoader([str(out), synthetic_uri], 2, config=xmem)


def test_xmem_preset_makes_eight_frame_clips_with_three_objects(synthetic_uri: str) -> None:
    with ClipLoader(synthetic_uri, 2, config=_config(sampler={"preset": "xmem"})) as loader:
        batch = loader.batch(0, 10)
    assert tuple(batch.masks.shape) == (2, 8, 3, 48, 48)


def test_missing_dataset_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no manifest.json"):
        ClipLoader(str(tmp_path / "nothing"), 1)


def test_real_davis_sample_through_the_loader(davis_sample: Path, tmp_path: Path) -> None:
    out = tmp_path / "davis"
    ingest("davis", str(davis_sample), str(out), IngestConfig(engine="threads"), progress=False)
    with ClipLoader(str(out), 2, config=_config(augment={"crop_size": 96})) as loader:
        batch = next(loader.iterate(total_steps=1))
    assert tuple(batch.frames.shape) == (2, 3, 3, 96, 96) and (batch.masks[:, 0, 0].sum(dim=(1, 2)) > 0).all()


def test_decoded_cache_changes_nothing_but_speed(synthetic_uri: str) -> None:
    def run(decoded_cache_mb: int) -> list[torch.Tensor]:
        with ClipLoader(synthetic_uri, 3, seed=4, config=_config(loader={"decoded_cache_mb": decoded_cache_mb})) as loader:
            return [b.frames for b in loader.iterate(total_steps=8)]  # 24 samples: frames get reused

    assert all(torch.equal(a, b) for a, b in zip(run(0), run(64)))


@pytest.mark.parametrize("decoded_cache_mb", [64, 0])
def test_cache_counts_tell_how_often_a_read_or_a_decode_was_saved(synthetic_uri: str, decoded_cache_mb: int) -> None:
    config = _config(loader={"num_workers": 0, "decoded_cache_mb": decoded_cache_mb})
    with ClipLoader(synthetic_uri, 3, seed=4, config=config) as loader:  # 12 videos: an epoch is 4 batches
        for _ in loader.iterate(total_steps=4):
            pass
        first = loader.cache_counts
        for _ in loader.iterate(total_steps=8, start_step=4):  # the second epoch reads every video again
            pass
        second = loader.cache_counts
    assert first["encoded"] == CacheCounts(0, 12) and second["encoded"] == CacheCounts(12, 24)
    assert first["encoded"].hit_rate == 0.0 and second["encoded"].hit_rate == 0.5
    # within the first epoch no frame is decoded twice: every lookup misses
    assert first["decoded"].hits == 0 and 12 <= first["decoded"].lookups <= 36
    if decoded_cache_mb:  # the second epoch samples some of the same frames again: those are not decoded again
        assert second["decoded"].hits > 0
    else:
        assert second["decoded"].hits == 0 and second["decoded"].lookups > first["decoded"].lookups


def test_a_cache_that_turned_over_without_hits_switches_itself_off() -> None:
    from components.data.loader import _LruCache

    cache = _LruCache(capacity=100, min_hit_rate=0.05)
    for key in range(10):  # 10 x 10 bytes fill it exactly: nothing evicted yet, so it stays on
        assert cache.get(key) is None
        cache.put(key, key, 10)
    assert not cache.counts().switched_off
    for key in range(10, 20):  # never a hit; after the 10th eviction it has turned over once
        assert cache.get(key) is None
        cache.put(key, key, 10)
    assert cache.counts() == CacheCounts(0, 20, switched_off=True)
    cache.put(99, 99, 10)
    assert cache.get(99) is None and cache.counts() == CacheCounts(0, 21, switched_off=True)  # keeps nothing


def test_a_cache_told_to_stay_on_stays_on_without_hits() -> None:
    from components.data.loader import _LruCache

    cache = _LruCache(capacity=100, min_hit_rate=0.0)
    for step in range(200):  # a cycle of 12 keys through 10 slots: LRU misses every time
        if cache.get(step % 12) is None:
            cache.put(step % 12, step, 10)
    assert cache.counts() == CacheCounts(0, 200, switched_off=False)


def test_a_cache_that_hits_often_enough_stays_on() -> None:
    from components.data.loader import _LruCache

    cache = _LruCache(capacity=100, min_hit_rate=0.05)
    for step in range(200):  # every other lookup is one hot key; the rest a stream that never repeats
        key = "hot" if step % 2 else step
        if cache.get(key) is None:
            cache.put(key, step, 10)
    counts = cache.counts()
    assert not counts.switched_off and counts.hit_rate > 0.45, counts


def test_a_switched_off_decoded_cache_changes_nothing_but_speed(synthetic_uri: str) -> None:
    """12 videos x 16 frames at 64 px are 3 MB decoded: a 1 MB cache turns over and, told to want every
    lookup to hit, switches off; the batches are those of a loader without the cache."""
    def run(decoded_cache_mb: int, min_hit_rate: float) -> tuple[list[torch.Tensor], CacheCounts]:
        config = _config(loader={"num_workers": 0, "decoded_cache_mb": decoded_cache_mb,
                                 "decoded_cache_min_hit_rate": min_hit_rate})
        with ClipLoader(synthetic_uri, 3, seed=4, config=config) as loader:
            frames = [b.frames for b in loader.iterate(total_steps=64)]
            return frames, loader.cache_counts["decoded"]

    plain, _ = run(0, 0.0)
    switched, counts = run(1, 1.0)
    assert counts.switched_off and counts.lookups > 0
    kept, kept_counts = run(1, 0.0)
    assert not kept_counts.switched_off and kept_counts.hits > 0
    assert all(torch.equal(a, b) for a, b in zip(plain, switched))
    assert all(torch.equal(a, b) for a, b in zip(plain, kept))
