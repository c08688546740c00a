"""STCN's propagation memory: keys of memory frames and, per frame, values of the objects known then.

Keys and values live in buffers along a frame axis that grows by doubling, so adding a memory frame
copies one frame (not the whole memory, as stacking per read would) and a read takes views: keys
1,Ck,T,h,w, values element-major and channel-last (T,h,w,O,Cv), so each memory element's values of a
group of objects are one strided row that the top-k read gathers directly. The
optional last-frame entry (`include_last`) sits in the slot after the memory frames and is overwritten
by the next frame. Objects that appear later (YouTube-VOS) join at the frame of their first mask; they
are read only from memory frames at or after that frame, as STCN's per-object memory does: frames
stay in time order, so those are a suffix of the buffer. An optional cap on memory frames keeps every
frame where objects joined and drops the oldest others.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class MemoryFrame:
    frame_index: int
    objects: int  # objects that hold values in this frame (the first ones in join order)
    permanent: bool  # a frame where objects joined; never evicted


class MemoryStore:
    """Memory frames in append-only buffers: keys 1,Ck,T,h,w and values T,h,w,O,Cv (O: objects so far)."""

    def __init__(self, max_frames: int | None = None) -> None:
        self.max_frames = max_frames
        self.frames: list[MemoryFrame] = []
        self._keys: torch.Tensor | None = None  # 1, Ck, capacity, h, w
        self._values: torch.Tensor | None = None  # capacity, h, w, O, Cv
        self._last: MemoryFrame | None = None  # the temporary last-frame entry, in slot len(frames)

    @property
    def frame_indices(self) -> list[int]:
        return [f.frame_index for f in self.frames]

    def add(self, frame_index: int, key: torch.Tensor, values: torch.Tensor, permanent: bool = False) -> None:
        """Append a memory frame (key 1,Ck,h,w; values 1,O_known,Cv,h,w); evicts the oldest non-permanent
        frame when over `max_frames`. Drops a temporary last-frame entry."""
        self._last = None
        self._write(len(self.frames), key, values)
        self.frames.append(MemoryFrame(frame_index, values.shape[1], permanent))
        if self.max_frames is not None and len(self.frames) > self.max_frames:
            victim = next((i for i, f in enumerate(self.frames) if not f.permanent), None)
            if victim is not None:
                self._drop(victim)

    def set_last(self, frame_index: int, key: torch.Tensor, values: torch.Tensor) -> None:
        """The temporary entry of the latest frame, read until the next frame replaces it or a memory frame is added."""
        self._write(len(self.frames), key, values)
        self._last = MemoryFrame(frame_index, values.shape[1], False)

    def groups(self, join_frames: list[int]) -> list[tuple[slice, torch.Tensor, torch.Tensor]]:
        """Per group of objects that joined together: (object slots, keys 1,Ck,N, value rows 1,N,O_g*Cv),
        views into the buffers over the memory frames (and the last-frame entry) at or after the join."""
        readable = self.frames + ([self._last] if self._last is not None else [])
        result = []
        for join in sorted(set(join_frames)):
            slots = [i for i, j in enumerate(join_frames) if j == join]
            first, stop = slots[0], slots[-1] + 1
            if slots != list(range(first, stop)):
                raise ValueError(f"objects joining at frame {join} are not consecutive: {slots}")
            start = next((i for i, f in enumerate(readable) if f.frame_index >= join), len(readable))
            usable = readable[start:]
            if not usable:
                continue
            if any(f.objects < stop for f in usable):
                raise ValueError(f"a memory frame at or after frame {join} lacks values for objects {slots}")
            end = start + len(usable)
            keys = self._keys[:, :, start:end].flatten(start_dim=2)  # a view: frames are contiguous per channel
            rows = self._values[start:end, :, :, first:stop].flatten(end_dim=2).flatten(start_dim=1)  # N, O_g*Cv
            result.append((slice(first, stop), keys, rows[None]))
        return result

    def _write(self, slot: int, key: torch.Tensor, values: torch.Tensor) -> None:
        """Put one frame's key and values into buffer slot `slot`, growing the buffers as needed."""
        objects = values.shape[1]
        if self._keys is None or slot >= self._keys.shape[2] or objects > self._values.shape[3]:
            self._grow(slot + 1, max(objects, 0 if self._values is None else self._values.shape[3]), key, values)
        self._keys[:, :, slot] = key
        self._values[slot, :, :, :objects] = values[0].permute(2, 3, 0, 1)  # O,Cv,h,w -> h,w,O,Cv
        self._values[slot, :, :, objects:] = 0

    def _grow(self, frames: int, objects: int, key: torch.Tensor, values: torch.Tensor) -> None:
        """Reallocate with room for at least `frames` frames (doubling) and `objects` objects, keeping the contents."""
        capacity = self._keys.shape[2] if self._keys is not None else 4
        while capacity < frames:
            capacity *= 2
        used = len(self.frames) + (1 if self._last is not None else 0)
        keys = key.new_empty(1, key.shape[1], capacity, *key.shape[-2:])
        new_values = values.new_zeros(capacity, *values.shape[-2:], objects, values.shape[2])
        if self._keys is not None and used:
            keys[:, :, :used] = self._keys[:, :, :used]
            new_values[:used, :, :, : self._values.shape[3]] = self._values[:used]
        self._keys, self._values = keys, new_values

    def _drop(self, position: int) -> None:
        """Remove memory frame `position`, shifting the later frames down one slot (order is kept)."""
        count = len(self.frames)
        if position < count - 1:
            self._keys[:, :, position: count - 1] = self._keys[:, :, position + 1: count].clone()
            self._values[position: count - 1] = self._values[position + 1: count].clone()
        del self.frames[position]
