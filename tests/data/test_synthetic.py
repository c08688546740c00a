"""The synthetic generator: reproducible, cheap, exact masks, and true point tracks."""

from __future__ import annotations

import time

import numpy as np
import pytest

from components.data.synthetic import (
    SyntheticMotion,
    SyntheticSpec,
    generate_video,
    parse_spec,
    sample_points,
    track_points,
)

SPEC = SyntheticSpec(videos=10, frames=20, height=64, width=96, seed=3)


def test_same_seed_and_index_give_identical_videos_and_others_differ() -> None:
    a, b = generate_video(SPEC, 4), generate_video(SPEC, 4)
    assert np.array_equal(a.frames, b.frames) and np.array_equal(a.masks, b.masks)
    assert not np.array_equal(a.frames, generate_video(SPEC, 5).frames)
    assert not np.array_equal(a.frames, generate_video(SyntheticSpec(**{**SPEC.__dict__, "seed": 4}), 4).frames)


def test_shapes_object_counts_and_visibility_in_frame_zero() -> None:
    counts = set()
    for index in range(SPEC.videos):
        video = generate_video(SPEC, index)
        assert video.frames.shape == (20, 64, 96, 3) and video.frames.dtype == np.uint8
        assert video.masks.shape == (20, 64, 96)
        ids = sorted(video.motion.objects)
        counts.add(len(ids))
        assert 1 <= len(ids) <= 3 and sorted(video.motion.depth_order) == ids
        for oid in ids:  # every object shows most of itself at the start
            scale = abs(np.linalg.det(video.motion.objects[oid][0][:, :2]))
            assert (video.masks[0] == oid).sum() >= 0.2 * 0.5 * scale * 96**2
    assert len(counts) >= 2  # not always the same number of objects


def test_objects_move_scale_and_occlude() -> None:
    areas_change = occluded = moved = False
    for index in range(SPEC.videos):
        video = generate_video(SPEC, index)
        for oid, affines in video.motion.objects.items():
            scale = np.sqrt(np.abs(np.linalg.det(affines[:, :, :2])))
            areas_change |= abs(scale[-1] / scale[0] - 1) > 0.1
            moved |= np.linalg.norm(affines[-1, :, 2] - affines[0, :, 2]) > 5
            visible = (video.masks == oid).sum(axis=(1, 2))
            occluded |= oid != video.motion.depth_order[-1] and visible.min() < 0.8 * visible.max()
    assert areas_change and moved and occluded


def test_each_video_is_cheap() -> None:
    spec = SyntheticSpec(frames=30, height=128, width=128)
    start = time.perf_counter()
    for index in range(5):
        generate_video(spec, index)
    assert (time.perf_counter() - start) / 5 < 0.5


def test_tracks_follow_the_true_motion_and_visibility_matches_the_masks() -> None:
    video = generate_video(SPEC, 2)
    rng = np.random.default_rng(0)
    for oid in video.motion.objects:
        points = sample_points(video.masks, oid, 40, rng)
        tracks = track_points(video.motion, video.masks, points)
        assert np.allclose(tracks.positions[0], points) and (tracks.owner == oid).all() and tracks.visible[0].all()
        affines = video.motion.objects[oid]
        local = (points - affines[0][:, 2]) @ np.linalg.inv(affines[0][:, :2]).T
        assert np.allclose(tracks.positions[7], local @ affines[7][:, :2].T + affines[7][:, 2])
        for f in range(SPEC.frames):  # visible exactly where the mask shows the object at the tracked pixel
            xy = np.rint(tracks.positions[f]).astype(int)
            inside = (xy[:, 0] >= 0) & (xy[:, 0] < 96) & (xy[:, 1] >= 0) & (xy[:, 1] < 64)
            shown = np.zeros(len(xy), bool)
            shown[inside] = video.masks[f][xy[inside, 1], xy[inside, 0]] == oid
            assert np.array_equal(tracks.visible[f], shown)


def test_tracked_points_keep_their_colour_while_visible() -> None:
    """The texture moves with the object: a visible tracked pixel looks like it did in frame 0."""
    video = generate_video(SyntheticSpec(frames=6, height=96, width=96, seed=1), 0)
    oid = video.motion.depth_order[-1]  # the top object is never occluded
    points = sample_points(video.masks, oid, 200, np.random.default_rng(1))
    tracks = track_points(video.motion, video.masks, points)
    first = video.frames[0][points[:, 1].astype(int), points[:, 0].astype(int)].astype(float)
    xy = np.rint(tracks.positions[1]).astype(int)
    seen = tracks.visible[1]
    later = video.frames[1][xy[seen, 1], xy[seen, 0]].astype(float)
    assert np.median(np.abs(later - first[seen])) < 40
    shuffled = np.roll(first[seen], 17, axis=0)  # unrelated pixels of the same object differ more
    assert np.median(np.abs(later - shuffled)) > np.median(np.abs(later - first[seen]))


def test_background_points_track_the_pan() -> None:
    video = generate_video(SPEC, 1)
    ys, xs = np.nonzero(video.masks[0] == 0)
    points = np.stack([xs[:30], ys[:30]], axis=1).astype(float)
    tracks = track_points(video.motion, video.masks, points)
    assert (tracks.owner == 0).all()
    b0, b5 = video.motion.background[0], video.motion.background[5]
    local = (points - b0[:, 2]) @ np.linalg.inv(b0[:, :2]).T
    assert np.allclose(tracks.positions[5], local @ b5[:, :2].T + b5[:, 2])


def test_motion_json_round_trip_and_spec_parsing() -> None:
    video = generate_video(SPEC, 0)
    again = SyntheticMotion.from_json(video.motion.to_json())
    assert all(np.array_equal(again.objects[k], v) for k, v in video.motion.objects.items())
    assert np.array_equal(again.background, video.motion.background)
    assert parse_spec("videos=4, size=48,seed=2") == SyntheticSpec(videos=4, height=48, width=48, seed=2)
    assert parse_spec("") == SyntheticSpec()
    with pytest.raises(ValueError, match="key=integer"):
        parse_spec("videos=many")
