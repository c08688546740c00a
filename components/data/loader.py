"""`ClipLoader`: batches of training clips for one Ray Train worker, streamed from datasets on storage.

The worker owns every `world_size`-th video (by rank) and reads only those, one row group at a
time, keeping encoded videos in one memory cache and decoded frames in another (a small dataset is
decoded once). Background threads decode, augment and write each clip straight into the batch
tensors (OpenCV and torch release the GIL). Every sample's randomness is a function of (seed, rank, step, index), and the
video order a per-epoch permutation seeded the same way, so a run is reproducible whatever the
thread timing, and a resumed run can start at any step and see exactly the batches it would have.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Hashable, Iterator, Sequence

import numpy as np
import torch

from components.data.clips import Clip, decode_frame, static_clip, video_clip
from components.data.config import DataConfig
from components.data.dataset import VideoDataset
from components.data.records import VideoRecord
from components.errors import DataError
from components.training.batch import ClipBatch


@dataclass(frozen=True)
class DatasetRef:
    """A dataset URI and how many times each of its videos enters an epoch."""

    uri: str
    repeat: int = 1


class ClipLoader:
    """Yields `ClipBatch`es of `batch_size` clips (this worker's share of a global batch)."""

    def __init__(
        self,
        datasets: str | DatasetRef | Sequence[str | DatasetRef],
        batch_size: int,
        *,
        rank: int = 0,
        world_size: int = 1,
        seed: int = 0,
        config: DataConfig = DataConfig(),
        storage_options: dict[str, Any] | None = None,
    ) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside world size {world_size}")
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        refs = [d if isinstance(d, DatasetRef) else DatasetRef(d) for d in ([datasets] if isinstance(datasets, (str, DatasetRef)) else datasets)]
        self.datasets = [VideoDataset(r.uri, storage_options) for r in refs]
        self.batch_size, self.rank, self.world_size, self.seed = batch_size, rank, world_size, seed
        self.config = config
        self.items = self._share(refs)
        self._frames, self._crop = self._clip_shape()
        self._encoded = _LruCache(config.loader.cache_mb << 20)
        self._decoded = _LruCache(config.loader.decoded_cache_mb << 20, config.loader.decoded_cache_min_hit_rate)
        self._orders: dict[int, np.ndarray] = {}
        workers = config.loader.num_workers
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="clips") if workers > 0 else None

    @property
    def cache_counts(self) -> dict[str, CacheCounts]:
        """Hits and lookups of the encoded-video and the decoded-frame cache since the loader was made.

        At a scale the caches cannot hold (thousands of videos) the hit rates are near zero, and a
        loader's speed is its decoding; `python -m bench.data` prints them beside its samples/s. There
        the decoded cache switches itself off (`loader.decoded_cache_min_hit_rate`; `switched_off`).
        """
        return {"encoded": self._encoded.counts(), "decoded": self._decoded.counts()}

    @property
    def versions(self) -> list[str]:
        """Content hashes of the datasets read (log them with the run)."""
        return [d.version for d in self.datasets]

    def sample(self, step: int, index: int, total_steps: int) -> Clip:
        """Clip `index` of batch `step`, under the curriculum at progress `step / total_steps`."""
        rng = np.random.default_rng([self.seed, self.rank, step, index])
        dataset_index, name = self.video_at(step * self.batch_size + index)
        record = self._record(dataset_index, name)
        progress = min(1.0, step / max(1, total_steps))
        decode = self._decoder(dataset_index)
        if self._is_static(dataset_index):
            return static_clip(record, rng, self.config.sampler, self.config.static_augment, decode)
        return video_clip(record, rng, self.config.sampler, self.config.augment, progress, decode)

    def batch(self, step: int, total_steps: int) -> ClipBatch:
        """Batch `step`, built in the calling thread."""
        out = self._allocate()
        for i in range(self.batch_size):
            _fill(out, i, self.sample(step, i, total_steps))
        return ClipBatch(*out)

    def _allocate(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Empty batch tensors; the decode threads write their clips straight into them."""
        b, t, o, size = self.batch_size, self._frames, self.config.sampler.max_objects, self._crop
        return torch.empty(b, t, 3, size, size), torch.empty(b, t, o, size, size), torch.empty(b, o)

    def _sample_into(self, out: tuple[torch.Tensor, ...], step: int, index: int, total_steps: int) -> None:
        _fill(out, index, self.sample(step, index, total_steps))

    def iterate(self, total_steps: int, start_step: int = 0) -> Iterator[ClipBatch]:
        """Batches for steps start_step .. total_steps-1, built ahead in background threads."""
        if self._pool is None:
            for step in range(start_step, total_steps):
                yield self.batch(step, total_steps)
            return
        pending: deque[tuple[tuple[torch.Tensor, ...], list[Future]]] = deque()
        steps = iter(range(start_step, total_steps))

        def submit_next() -> None:
            for step in steps:
                out = self._allocate()
                futures = [self._pool.submit(self._sample_into, out, step, i, total_steps) for i in range(self.batch_size)]
                pending.append((out, futures))
                return

        try:
            for _ in range(self.config.loader.prefetch_batches):
                submit_next()
            while pending:
                out, futures = pending.popleft()
                submit_next()
                for f in futures:
                    f.result()  # re-raises a sample's error here, in the trainer's thread
                yield ClipBatch(*out)
        finally:
            for _, futures in pending:
                for f in futures:
                    f.cancel()

    def close(self) -> None:
        """Stop the background threads."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> "ClipLoader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _is_static(self, dataset_index: int) -> bool:
        mode = self.config.sampler.mode
        return mode == "static" or (mode == "auto" and self.datasets[dataset_index].kind == "static")

    def _clip_shape(self) -> tuple[int, int]:
        """(frames, crop size) of every clip; static and video datasets in one loader must agree."""
        sampler = self.config.sampler
        shapes = {
            (sampler.static_num_frames, self.config.static_augment.crop_size) if self._is_static(d)
            else (sampler.num_frames, self.config.augment.crop_size)
            for d in range(len(self.datasets))
        }
        if len(shapes) > 1:
            raise ValueError(f"static and video datasets in one loader need one clip shape (frames, crop), got {sorted(shapes)}")
        return shapes.pop()

    def _share(self, refs: list[DatasetRef]) -> list[tuple[int, str]]:
        """This rank's videos (every world_size-th of all videos with objects), each repeated as asked."""
        usable = [(d, v.name) for d, ds in enumerate(self.datasets) for v in ds.manifest.videos if v.objects > 0]
        mine = usable[self.rank :: self.world_size]
        if not mine:
            raise DataError(
                f"rank {self.rank} of {self.world_size} gets no videos: {len(usable)} usable videos in"
                f" {', '.join(r.uri for r in refs)}"
            )
        return [item for item in mine for _ in range(refs[item[0]].repeat)]

    def video_at(self, counter: int) -> tuple[int, str]:
        """(dataset index, video name) of this rank's `counter`-th sample (step * batch_size + index).

        Each epoch is a seeded permutation of the rank's items, so every video comes once per epoch.
        """
        epoch, position = divmod(counter, len(self.items))
        order = self._orders.get(epoch)
        if order is None:
            order = np.random.default_rng([self.seed, self.rank, epoch, 0xE90C]).permutation(len(self.items))
            self._orders = {epoch: order}  # one epoch at a time; a racing thread at worst recomputes it
        return self.items[int(order[position])]

    def _record(self, dataset_index: int, name: str) -> VideoRecord:
        key = (dataset_index, name)
        record = self._encoded.get(key)
        if record is None:
            record = self.datasets[dataset_index].read(name)
            size = sum(len(b) for b in record.frames) + sum(len(b) for b in record.masks)
            self._encoded.put(key, record, size)
        return record

    def _decoder(self, dataset_index: int) -> Callable[[VideoRecord, int], tuple[np.ndarray, np.ndarray]]:
        """Decode a frame and its mask once, then serve them from the decoded cache (read-only arrays)."""
        def decode(record: VideoRecord, index: int) -> tuple[np.ndarray, np.ndarray]:
            key = (dataset_index, record.name, index)
            pair = self._decoded.get(key)
            if pair is None:
                pair = decode_frame(record, index)
                for array in pair:
                    array.setflags(write=False)
                self._decoded.put(key, pair, pair[0].nbytes + pair[1].nbytes)
            return pair

        return decode


def collate(clips: list[Clip]) -> ClipBatch:
    """Stack clips (all of one shape) into a `ClipBatch`."""
    t, size, _, _ = clips[0].frames.shape
    objects = clips[0].masks.shape[1]
    out = (torch.empty(len(clips), t, 3, size, size), torch.empty(len(clips), t, objects, size, size), torch.empty(len(clips), objects))
    for i, clip in enumerate(clips):
        _fill(out, i, clip)
    return ClipBatch(*out)


def _fill(out: tuple[torch.Tensor, ...], index: int, clip: Clip) -> None:
    """Write one clip into row `index` of batch tensors: uint8 HWC -> float CHW in [0, 1], in one pass."""
    frames, masks, selector = out
    torch.mul(torch.from_numpy(clip.frames).permute(0, 3, 1, 2), 1.0 / 255.0, out=frames[index])
    masks[index].copy_(torch.from_numpy(clip.masks))
    selector[index].copy_(torch.from_numpy(clip.selector))


@dataclass(frozen=True)
class CacheCounts:
    """Lookups of one cache, and how many found their value."""

    hits: int
    lookups: int
    switched_off: bool = False  # it stopped keeping values: too few hits once it had turned over

    @property
    def hit_rate(self) -> float:
        """Hits per lookup (0 before any lookup)."""
        return self.hits / self.lookups if self.lookups else 0.0


class _LruCache:
    """Least-recently-used values bounded by their total byte size; shared by the decode threads.

    With `min_hit_rate` > 0 it switches itself off for good once it has evicted its whole capacity with
    fewer hits per lookup than that: LRU then holds a sliver of a much larger working set, and each value
    kept only to be evicted unread is memory traffic for nothing. Off, it keeps nothing and counts lookups.
    """

    def __init__(self, capacity: int, min_hit_rate: float = 0.0) -> None:
        self.capacity = capacity
        self.min_hit_rate = min_hit_rate
        self._items: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._bytes = self._evicted = 0
        self._lock = threading.Lock()
        self._hits = self._lookups = 0
        self._off = False

    def get(self, key: Hashable) -> Any:
        with self._lock:
            self._lookups += 1
            if self._off:
                return None
            hit = self._items.get(key)
            if hit is None:
                return None
            self._hits += 1
            self._items.move_to_end(key)
            return hit[0]

    def counts(self) -> CacheCounts:
        """Hits and lookups so far."""
        with self._lock:
            return CacheCounts(self._hits, self._lookups, self._off)

    def put(self, key: Hashable, value: Any, size: int) -> None:
        with self._lock:
            if self._off or key in self._items or size > self.capacity:
                return
            self._items[key] = (value, size)
            self._bytes += size
            while self._bytes > self.capacity:
                _, (_, dropped) = self._items.popitem(last=False)
                self._bytes -= dropped
                self._evicted += dropped
            if self._evicted >= self.capacity and self._hits < self.min_hit_rate * self._lookups:
                self._off = True
                self._items.clear()
                self._bytes = 0
