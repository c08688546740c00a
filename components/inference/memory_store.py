"""The propagation memory: keys of memory frames and, per frame, values of the objects known then.

Objects that appear later (YouTube-VOS) join at the frame of their first mask; they are read only
from memory frames at or after that frame, as STCN's per-object memory does. An optional cap on
memory frames keeps every frame where objects joined and drops the oldest others.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class MemoryEntry:
    frame_index: int
    key: torch.Tensor  # 1, Ck, h, w
    values: torch.Tensor  # 1, O_known, Cv, h, w (objects in join order)
    permanent: bool  # a frame where objects joined; never evicted


@dataclass
class MemoryStore:
    max_frames: int | None = None
    entries: list[MemoryEntry] = field(default_factory=list)

    def add(self, frame_index: int, key: torch.Tensor, values: torch.Tensor, permanent: bool = False) -> None:
        self.entries.append(MemoryEntry(frame_index, key, values, permanent))
        if self.max_frames is not None:
            while len(self.entries) > self.max_frames:
                victim = next((i for i, e in enumerate(self.entries) if not e.permanent), None)
                if victim is None:
                    break
                del self.entries[victim]

    @property
    def frame_indices(self) -> list[int]:
        return [e.frame_index for e in self.entries]

    def groups(self, join_frames: list[int]) -> list[tuple[list[int], torch.Tensor, torch.Tensor]]:
        """Per group of objects that joined together: (object slots, keys 1,Ck,T,h,w, values 1,O_g,Cv,T,h,w)."""
        result = []
        for join in sorted(set(join_frames)):
            slots = [i for i, j in enumerate(join_frames) if j == join]
            usable = [e for e in self.entries if e.frame_index >= join and e.values.shape[1] > max(slots)]
            if not usable:
                continue
            keys = torch.stack([e.key for e in usable], dim=2)
            values = torch.stack([e.values[:, slots] for e in usable], dim=3)
            result.append((slots, keys, values))
        return result
