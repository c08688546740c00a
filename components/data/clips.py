"""One training sample from one stored video: plan frames, decode only those, augment, pick objects.

Objects are picked after augmentation among those still visible in the clip's first frame (the
memory's reference), up to `max_objects`, in random order. Objects not picked are background, as
in STCN and XMem; the model derives each slot's "other objects" input from the other slots. When
a crop loses every object of frame 0, a fresh augmentation is drawn (up to `max_tries`), then a
plain one (no crop, no affine) is used.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np

from components.data.augment import augment_video
from components.data.config import SamplerConfig, StaticAugmentConfig, VideoAugmentConfig
from components.data.records import VideoRecord, object_ids_in
from components.data.sampling import frame_jump, max_skip_at, plan_clip
from components.data.static_clips import augment_static


Decoder = Callable[[VideoRecord, int], tuple[np.ndarray, np.ndarray]]


def decode_frame(record: VideoRecord, index: int) -> tuple[np.ndarray, np.ndarray]:
    """(RGB frame, id mask) of annotated frame `index`, decoded afresh."""
    return record.frame(index), record.mask(index)


@dataclass(frozen=True)
class Clip:
    """A training sample before batching: uint8 arrays, so batching converts to float once."""

    frames: np.ndarray  # T, S, S, 3 uint8 RGB
    masks: np.ndarray  # T, O, S, S uint8 in {0, 1}
    selector: np.ndarray  # O float32 in {0, 1}
    info: dict = field(default_factory=dict)  # video, frame indices, object ids, skip, reversed


def video_clip(
    record: VideoRecord, rng: np.random.Generator, sampler: SamplerConfig, augment: VideoAugmentConfig, progress: float,
    decode: Decoder = decode_frame,
) -> Clip:
    """A clip of `sampler.num_frames` frames under the skip curriculum at `progress`."""
    max_skip = max_skip_at(progress, sampler)
    jump = frame_jump(max_skip, record.annotation_interval)
    reverse = bool(rng.random() < sampler.reverse_prob)
    plan = plan_clip([bool(ids) for ids in record.frame_objects], sampler.num_frames, jump, sampler.rule, reverse, rng)
    indices = [record.annotated[p] for p in plan.positions]
    decoded = {p: decode(record, record.annotated[p]) for p in set(plan.positions)}
    frames = [decoded[p][0] for p in plan.positions]
    masks = [decoded[p][1] for p in plan.positions]
    plain = progress >= augment.plain_after
    for attempt in range(sampler.max_tries + 1):
        last = attempt == sampler.max_tries
        if last:  # a view that keeps the whole frame: nothing present in frame 0 can be cropped away
            augment = _uncropped(augment)
        out_frames, out_masks = augment_video(frames, masks, augment, rng, plain=plain or last)
        present = object_ids_in(out_masks[0])
        if present:
            break
    info = {"video": record.name, "frames": indices, "max_skip": max_skip, "reversed": plan.reversed}
    return _with_objects(out_frames, out_masks, present, sampler.max_objects, rng, info)


def static_clip(
    record: VideoRecord, rng: np.random.Generator, sampler: SamplerConfig, augment: StaticAugmentConfig,
    decode: Decoder = decode_frame,
) -> Clip:
    """A pseudo-video from one annotated frame and one of its objects (a static pair's only frame)."""
    choices = [(p, oid) for p, ids in enumerate(record.frame_objects) for oid in ids]
    position, object_id = choices[int(rng.integers(len(choices)))]
    index = record.annotated[position]
    image, ids = decode(record, index)
    mask = (ids == object_id).astype(np.uint8)
    for attempt in range(sampler.max_tries + 1):
        frames, masks = augment_static(image, mask, sampler.static_num_frames, augment, rng, plain=attempt == sampler.max_tries)
        if masks[0].any():
            break
    info = {"video": record.name, "frames": [index] * sampler.static_num_frames, "object": object_id}
    return _with_objects(frames, masks, [1] if masks[0].any() else [], sampler.max_objects, rng, info)


def _with_objects(
    frames: np.ndarray, masks: np.ndarray, present: list[int], max_objects: int, rng: np.random.Generator, info: dict
) -> Clip:
    picked = [int(i) for i in rng.permutation(present)[:max_objects]] if present else []
    t, size = masks.shape[0], masks.shape[1:]
    slots = np.zeros((t, max_objects, *size), np.uint8)
    selector = np.zeros(max_objects, np.float32)
    for slot, object_id in enumerate(picked):
        slots[:, slot] = masks == object_id
        selector[slot] = 1.0
    return Clip(frames=frames, masks=slots, selector=selector, info={**info, "objects": picked})


def _uncropped(augment: VideoAugmentConfig) -> VideoAugmentConfig:
    return replace(augment, crop_scale=(1.0, 1.0), crop_ratio=(0.01, 100.0))
