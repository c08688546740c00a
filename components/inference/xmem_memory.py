"""XMem's propagation memory for one video: a working memory of whole frames over a long-term memory of prototypes.

Reads weigh memory elements by anisotropic similarity (top-k softmax) and record how much affinity
each element receives (its usage). When working memory passes `work_max_frames` frames (or reaches
it: `consolidate_at="reach"`, as the official XMem does), its oldest non-permanent frames are
consolidated: their most-used elements become prototypes whose values are affinity-weighted averages
of those frames, and the prototypes move to long-term memory, which drops its least-used elements
when over `long_term_max`. So memory stays bounded on long videos. `usage_counting="official"`
counts usage and evicts exactly as the official XMem (see `XMemMemory`).

Objects join late: a frame holds values only for the objects known then, and each object reads only
elements that hold a value for it. Objects that hold values on the same elements are read together.
All elements live in one store, [long-term ; working], element-major: a read concatenates nothing and
gathers the values of its top-k elements as contiguous rows.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch

from components.model.memory_read import attend, similarity


@dataclass
class _Elements:
    """Memory elements along the first axis, so that sets of them concatenate and select by index."""

    key: torch.Tensor  # N, Ck
    shrinkage: torch.Tensor  # N
    selection: torch.Tensor  # N, Ck
    values: torch.Tensor  # N, O, Cv (zeros where not valid)
    valid: torch.Tensor  # N, O bool: the element holds a value for this object slot
    usage: torch.Tensor  # N fp32: affinity received, summed over reads
    life: torch.Tensor  # N fp32: reads since the element entered

    @property
    def size(self) -> int:
        return self.key.shape[0]

    @property
    def num_objects(self) -> int:
        return self.values.shape[1]

    def tensors(self) -> list[torch.Tensor]:
        return [getattr(self, f.name) for f in fields(self)]

    def usage_ratio(self) -> torch.Tensor:
        """Mean affinity per read (N fp32); elements never read score 0."""
        return self.usage / self.life.clamp(min=1)

    def take(self, index: torch.Tensor) -> _Elements:
        return _Elements(*(t.index_select(0, index) for t in self.tensors()))

    def with_objects(self, count: int) -> _Elements:
        """The same elements with `count` object slots; the new slots hold no value."""
        missing = count - self.num_objects
        if missing == 0:
            return self
        values = torch.cat([self.values, self.values.new_zeros(self.size, missing, self.values.shape[2])], dim=1)
        valid = torch.cat([self.valid, self.valid.new_zeros(self.size, missing)], dim=1)
        return _Elements(self.key, self.shrinkage, self.selection, values, valid, self.usage, self.life)

    @staticmethod
    def cat(parts: list[_Elements]) -> _Elements:
        """Concatenate (always a contiguous copy), widening every part to the most object slots."""
        count = max(p.num_objects for p in parts)
        columns = zip(*(p.with_objects(count).tensors() for p in parts), strict=True)
        return _Elements(*(torch.cat(list(c), dim=0) for c in columns))


@dataclass
class _Frame:
    index: int
    permanent: bool  # the first frame or one where objects joined: never consolidated


def _object_groups(valid: torch.Tensor) -> list[tuple[list[int], torch.Tensor | None]]:
    """valid: N, O -> per group of slots valid on the same elements: (slots, those elements; None = all)."""
    patterns, group_of_slot = torch.unique(valid.t().to(torch.uint8), dim=0, return_inverse=True)
    groups = []
    for g, pattern in enumerate(patterns.bool()):
        slots = (group_of_slot == g).nonzero().flatten().tolist()
        groups.append((slots, None if bool(pattern.all()) else pattern.nonzero().flatten()))
    return groups


def _prototypes(candidates: _Elements, count: int, inherit_usage: bool = True) -> _Elements:
    """Consolidate candidates into up to `count` prototypes: their most-used elements, holding weighted averages.

    Averages run in fp32 (or wider) with autocast off, like the similarity; values return to their dtype.
    `inherit_usage`: prototypes start with the affinity-weighted usage of the candidates (corrvos), else
    unused with a life of 1e-7 reads (official XMem).
    """
    with torch.autocast(candidates.key.device.type, enabled=False):
        ratio = candidates.usage_ratio()
        chosen = torch.topk(ratio, k=min(count, candidates.size)).indices
        key, selection = candidates.key[chosen], candidates.selection[chosen]  # P, Ck
        logits = similarity(candidates.key.t()[None], key.t()[None], candidates.shrinkage[None, :, None],
                            selection.t()[None])  # 1, P, Nc: candidates are the memory, prototypes the queries
        every = attend(logits, None)
        shrinkage = every.readout(candidates.shrinkage[None, :, None].to(every.weights.dtype))[0, :, 0]  # P
        # a head start, so new prototypes are not evicted at once
        usage = every.readout(ratio[None, :, None].to(every.weights.dtype))[0, :, 0]  # P
        p, cv = chosen.shape[0], candidates.values.shape[2]
        values = candidates.values.new_zeros(p, candidates.num_objects, cv)
        valid = candidates.valid.new_zeros(p, candidates.num_objects)
        for slots, columns in _object_groups(candidates.valid):
            if columns is not None and columns.numel() == 0:
                continue
            attention = every if columns is None else attend(logits, None, columns)
            rows = candidates.values[:, slots].flatten(start_dim=1).to(every.weights.dtype)[None]  # 1, Nc, slots*Cv
            averaged = attention.readout(rows)[0]  # P, slots*Cv
            values[:, slots] = averaged.view(p, len(slots), cv).to(values.dtype)
            valid[:, slots] = True
        if inherit_usage:
            usage, life = usage.float(), torch.ones(p, device=usage.device, dtype=torch.float32)
        else:
            usage, life = torch.zeros(p, device=usage.device, dtype=torch.float32), _new_life(p, usage.device)
        return _Elements(key, shrinkage.to(candidates.shrinkage.dtype), selection, values, valid, usage, life)


def _new_life(size: int, device: torch.device) -> torch.Tensor:
    """The official XMem's life count of new elements: 1e-7 reads (so usage / life is 0 until read)."""
    return torch.zeros(size, device=device, dtype=torch.float32) + 1e-7


def _used_above_surplus(elements: _Elements, count: int) -> _Elements:
    """The official XMem's eviction: keep the elements used more than the `size - count` least used (ties all go)."""
    if elements.size <= count:
        return elements
    ratio = elements.usage_ratio()
    threshold = torch.topk(ratio, k=elements.size - count, largest=False, sorted=True).values[-1]
    return elements.take((ratio > threshold).nonzero().flatten())


def _most_used(elements: _Elements, count: int) -> _Elements:
    """The `count` elements with the highest usage ratio, in their stored order: long-term eviction."""
    kept = torch.topk(elements.usage_ratio(), k=min(count, elements.size)).indices
    return elements.take(kept.sort().values)


class XMemMemory:
    """Working and long-term memory of one video (batch 1) for XMem propagation; no autograd."""

    def __init__(
        self,
        work_min_frames: int = 5,
        work_max_frames: int = 10,
        long_term_max: int = 10_000,
        num_prototypes: int = 128,
        top_k: int | None = 30,
        consolidate_at: str = "exceed",
        usage_counting: str = "corrvos",
    ) -> None:
        """`consolidate_at`: `exceed` consolidates when working memory holds more than `work_max_frames`
        frames, `reach` when it holds that many (official). `usage_counting`: `corrvos` gives prototypes
        their candidates' usage and evicts least-used long-term elements, new or old, after a
        consolidation that overfills long-term memory; `official` starts every new element unused with a
        life of 1e-7 reads and, before adding prototypes to a long-term memory of `long_term_max -
        num_prototypes` or more, keeps only the elements used more than its least-used surplus.
        """
        if work_min_frames < 1:
            raise ValueError(f"work_min_frames must be >= 1, got {work_min_frames}")
        if work_max_frames <= work_min_frames:
            raise ValueError(f"work_max_frames ({work_max_frames}) must exceed work_min_frames ({work_min_frames})")
        if num_prototypes < 1:
            raise ValueError(f"num_prototypes must be >= 1, got {num_prototypes}")
        if long_term_max <= num_prototypes:
            raise ValueError(f"long_term_max ({long_term_max}) must exceed num_prototypes ({num_prototypes})")
        if top_k is not None and top_k < 1:
            raise ValueError(f"top_k must be >= 1 or None, got {top_k}")
        if consolidate_at not in ("exceed", "reach"):
            raise ValueError(f"consolidate_at must be 'exceed' or 'reach', got {consolidate_at!r}")
        if usage_counting not in ("corrvos", "official"):
            raise ValueError(f"usage_counting must be 'corrvos' or 'official', got {usage_counting!r}")
        self.consolidate_at = consolidate_at
        self.official_usage = usage_counting == "official"
        self.work_min_frames = work_min_frames
        self.work_max_frames = work_max_frames
        self.long_term_max = long_term_max
        self.num_prototypes = num_prototypes
        self.top_k = top_k
        self._elements: _Elements | None = None  # [long-term ; working frames in order]
        self._long_term_size = 0
        self._frames: list[_Frame] = []
        self._frame_shape: tuple[int, int] | None = None  # h, w of every frame

    @property
    def working_frames(self) -> list[int]:
        return [f.index for f in self._frames]

    @property
    def working_size(self) -> int:
        return self.size - self._long_term_size

    @property
    def long_term_size(self) -> int:
        return self._long_term_size

    @property
    def size(self) -> int:
        return 0 if self._elements is None else self._elements.size

    @property
    def num_objects(self) -> int:
        """Object slots that have values somewhere in memory."""
        return 0 if self._elements is None else self._elements.num_objects

    @torch.no_grad()
    def add(
        self,
        frame_index: int,
        key: torch.Tensor,
        shrinkage: torch.Tensor,
        selection: torch.Tensor,
        values: torch.Tensor,
        permanent: bool = False,
    ) -> None:
        """Store a frame: key 1,Ck,h,w; shrinkage 1,1,h,w; selection 1,Ck,h,w; values 1,O,Cv,h,w (objects known now).

        The first frame and frames that bring new objects are always permanent; then consolidate if over the cap.
        """
        self._check_frame(key, shrinkage, selection, values)
        objects = values.shape[1]
        permanent = permanent or self._elements is None or objects > self.num_objects
        hw = key.shape[2] * key.shape[3]
        frame = _Elements(
            key=key[0].flatten(start_dim=1).t(),
            shrinkage=shrinkage.flatten(),
            selection=selection[0].flatten(start_dim=1).t(),
            values=values[0].flatten(start_dim=2).permute(2, 0, 1),
            valid=torch.ones(hw, objects, device=key.device, dtype=torch.bool),
            usage=torch.zeros(hw, device=key.device, dtype=torch.float32),
            life=_new_life(hw, key.device) if self.official_usage else torch.zeros(hw, device=key.device),
        )
        self._elements = _Elements.cat([frame] if self._elements is None else [self._elements, frame])
        self._frame_shape = (key.shape[2], key.shape[3])
        self._frames.append(_Frame(frame_index, permanent))
        full = len(self._frames) >= self.work_max_frames if self.consolidate_at == "reach" else \
            len(self._frames) > self.work_max_frames
        if full:
            self._consolidate()

    @torch.no_grad()
    def read(self, query_key: torch.Tensor, query_selection: torch.Tensor, num_objects: int) -> torch.Tensor:
        """Readout 1,num_objects,Cv,h,w for query key/selection 1,Ck,h,w; records usage. Slots without values read 0."""
        memory = self._elements
        if memory is None:
            raise ValueError("memory is empty: add a frame before reading")
        expected = (1, memory.key.shape[1], *self._frame_shape)
        if query_key.shape != expected:
            raise ValueError(f"query key is {tuple(query_key.shape)}, memory needs {expected}")
        if query_selection.shape != query_key.shape:
            raise ValueError(f"query selection is {tuple(query_selection.shape)}, query key {tuple(query_key.shape)}")
        if num_objects < 0:
            raise ValueError(f"num_objects must be >= 0, got {num_objects}")
        query, selection = query_key.flatten(start_dim=2), query_selection.flatten(start_dim=2)  # 1, Ck, HW
        logits = similarity(memory.key.t()[None], query, memory.shrinkage[None, :, None], selection)  # 1, HW, N
        every = attend(logits, self.top_k)  # what an object valid everywhere reads; defines usage, as in XMem
        memory.usage += every.usage(memory.size)
        memory.life += 1
        hw, cv = logits.shape[1], memory.values.shape[2]
        readout = memory.values.new_zeros(hw, num_objects, cv)
        readable = min(num_objects, memory.num_objects)
        for slots, columns in _object_groups(memory.valid[:, :readable]) if readable else []:
            if columns is not None and columns.numel() == 0:
                continue
            attention = every if columns is None else attend(logits, self.top_k, columns)
            rows = memory.values if len(slots) == memory.num_objects else memory.values[:, slots]  # N, slots, Cv
            readout[:, slots] = attention.readout(rows.flatten(start_dim=1)[None])[0].view(hw, len(slots), cv)
        return readout.permute(1, 2, 0).reshape(1, num_objects, cv, *self._frame_shape)

    def _check_frame(
        self, key: torch.Tensor, shrinkage: torch.Tensor, selection: torch.Tensor, values: torch.Tensor
    ) -> None:
        """Shapes agree with each other and with the frames already stored; objects never disappear."""
        if key.dim() != 4 or key.shape[0] != 1:
            raise ValueError(f"key must be 1,Ck,h,w, got {tuple(key.shape)}")
        _, ck, h, w = key.shape
        if shrinkage.shape != (1, 1, h, w):
            raise ValueError(f"shrinkage is {tuple(shrinkage.shape)}, expected {(1, 1, h, w)}")
        if selection.shape != key.shape:
            raise ValueError(f"selection is {tuple(selection.shape)}, key {tuple(key.shape)}")
        if values.dim() != 5 or values.shape[0] != 1 or values.shape[-2:] != (h, w) or values.shape[1] < 1:
            raise ValueError(f"values must be 1,O,Cv,{h},{w} with O >= 1, got {tuple(values.shape)}")
        memory = self._elements
        if memory is None:
            return
        if (h, w) != self._frame_shape:
            raise ValueError(f"frame is {h}x{w}, memory frames are {self._frame_shape[0]}x{self._frame_shape[1]}")
        if (ck, values.shape[2]) != (memory.key.shape[1], memory.values.shape[2]):
            raise ValueError(
                f"key/value channels {ck}/{values.shape[2]} differ from memory's "
                f"{memory.key.shape[1]}/{memory.values.shape[2]}"
            )
        if values.shape[1] < memory.num_objects:
            raise ValueError(f"values for {values.shape[1]} objects, but {memory.num_objects} are already known")

    def _consolidate(self) -> None:
        """Turn the oldest non-permanent working frames into long-term prototypes, then evict if over the cap."""
        excess = len(self._frames) - self.work_min_frames
        leaving = [i for i, f in enumerate(self._frames) if not f.permanent][:excess]
        if not leaving:
            return
        memory, start = self._elements, self._long_term_size
        hw = self._frame_shape[0] * self._frame_shape[1]
        device = memory.key.device
        frame_of_element = torch.arange(len(self._frames), device=device).repeat_interleave(hw)
        leaves = torch.isin(frame_of_element, torch.tensor(leaving, device=device))
        working = torch.arange(start, memory.size, device=device)
        old = memory.take(torch.arange(start, device=device))
        room = self.long_term_max - self.num_prototypes
        if self.official_usage and old.size >= room:  # official: evict among the old elements, then add
            old = _used_above_surplus(old, room)
        prototypes = _prototypes(memory.take(working[leaves]), self.num_prototypes, not self.official_usage)
        long_term = _Elements.cat([old, prototypes])
        if not self.official_usage and long_term.size > self.long_term_max:  # room for the next prototypes
            long_term = _most_used(long_term, room)
        self._elements = _Elements.cat([long_term, memory.take(working[~leaves])])
        self._long_term_size = long_term.size
        self._frames = [f for i, f in enumerate(self._frames) if i not in leaving]
