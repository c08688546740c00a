"""Folder readers for the data-plane benchmark: every sampled frame and mask opened from its own file.

Two ways to run them. `FolderClipLoader`: corrvos's own `ClipLoader` pipeline (decode threads,
prefetch, batching) with files in place of Parquet and no cache. `ProcessLoader`: what STCN and XMem
train with, a map-style `Dataset` behind a `torch.utils.data.DataLoader` with worker processes, each
sample turned into float tensors in its worker and stacked by `default_collate`. (STCN and XMem
augment with torchvision on PIL images; here every reader runs corrvos's OpenCV augmentation, so
the work per clip is the same.) Both draw exactly the
clips the Parquet loader draws (same seeds, video order, frame plan, augmentation and object choice,
from the ingested record's listing), so readers differ only in where bytes come from and how the work
is spread over the cores.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import cv2
import numpy as np
import pyarrow.parquet as pq
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from components.data.clips import Decoder, decode_frame
from components.data.config import DataConfig
from components.data.dataset import VideoDataset
from components.data.loader import ClipLoader
from components.data.sources.base import Folder, frame_files, mask_files
from components.training.batch import ClipBatch

LISTING = ["name", "frame_names", "annotated", "frame_objects", "annotation_interval"]


@dataclass(frozen=True)
class FolderVideo:
    """A video read file by file, with PIL (as STCN and XMem do) or OpenCV; it stands in for a `VideoRecord`."""

    name: str
    decoder: str  # "pil" or "cv2" (frames; masks are read with PIL either way, as palette indices)
    frame_paths: tuple[str, ...]
    mask_paths: dict[int, str]  # annotated frame index -> PNG
    annotated: list[int]
    frame_objects: list[list[int]]
    annotation_interval: int

    def frame(self, index: int) -> np.ndarray:
        """RGB uint8 (H, W, 3) of frame `index`, opened and decoded from its file."""
        if self.decoder == "pil":
            return np.asarray(Image.open(self.frame_paths[index]).convert("RGB"))
        return cv2.cvtColor(cv2.imread(self.frame_paths[index], cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)

    def mask(self, index: int) -> np.ndarray:
        """Ids as a folder loader reads them: palette indices, or 255 -> 1 for grayscale (no checks)."""
        image = Image.open(self.mask_paths[index])
        if image.mode == "P":
            return np.asarray(image)
        return (np.asarray(image.convert("L")) == 255).astype(np.uint8)


def folder_videos(images_dir: str, annotations_dir: str, dataset_uri: str, decoder: str) -> dict[str, FolderVideo]:
    """Every ingested video of `dataset_uri` as its files: `images_dir/<video>/`, `annotations_dir/<video>/`.

    Which frames exist and which objects each mask holds come from the ingested records (read once,
    not timed), so a folder reader plans the same clips as the Parquet loader.
    """
    images, annotations = Folder(images_dir), Folder(annotations_dir)
    videos = {}
    for name, listing in _listings(dataset_uri).items():
        frame_dir, mask_dir = images.join(name), annotations.join(name)
        frames, masks = frame_files(images, frame_dir), mask_files(annotations, mask_dir)
        stems = listing["frame_names"]
        videos[name] = FolderVideo(
            name, decoder, tuple(posixpath.join(frame_dir, frames[s]) for s in stems),
            {i: posixpath.join(mask_dir, masks[stems[i]]) for i in listing["annotated"]},
            list(listing["annotated"]), [list(ids) for ids in listing["frame_objects"]], listing["annotation_interval"])
    return videos


def _listings(dataset_uri: str) -> dict[str, dict[str, Any]]:
    """Name -> frame names, annotated indices, objects per mask and annotation interval (no frame bytes read)."""
    dataset = VideoDataset(dataset_uri)
    rows: dict[str, dict[str, Any]] = {}
    for shard in dataset.manifest.shards:
        with dataset.fs.open(posixpath.join(dataset.root, shard.path), "rb") as handle:
            rows.update({row["name"]: row for row in pq.read_table(handle, columns=LISTING).to_pylist()})
    return rows


class FolderClipLoader(ClipLoader):
    """The same loader (videos, seeds, sampler, augmentation, threads, prefetch, batching), but every
    sampled frame and mask is read from its own file, with no cache."""

    def __init__(self, videos: dict[str, FolderVideo], *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.folder_videos = videos

    def _record(self, dataset_index: int, name: str) -> FolderVideo:  # a FolderVideo stands in for a record
        """The video's files, read nowhere until a frame is sampled."""
        return self.folder_videos[name]

    def _decoder(self, dataset_index: int) -> Decoder:
        """Decode every sampled frame afresh: folder readers keep no cache."""
        return decode_frame


class FolderClipDataset(Dataset):
    """Sample i is clip i % batch of batch i // batch of the Parquet loader's stream, read from files.

    Each worker process builds its own sampler on first use (nothing with a lock crosses a fork), and
    returns float tensors as STCN's and XMem's datasets do; `default_collate` stacks them.
    """

    def __init__(self, videos: dict[str, FolderVideo], dataset_uri: str, batch_size: int, config: DataConfig,
                 total_steps: int) -> None:
        self.videos, self.dataset_uri, self.batch_size, self.total_steps = videos, dataset_uri, batch_size, total_steps
        self.config = replace(config, loader=replace(config.loader, num_workers=0))  # the worker is the parallelism
        self._sampler: FolderClipLoader | None = None

    def __len__(self) -> int:
        return self.total_steps * self.batch_size

    def __getitem__(self, item: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if self._sampler is None:
            self._sampler = FolderClipLoader(self.videos, self.dataset_uri, self.batch_size, config=self.config)
        step, index = divmod(item, self.batch_size)
        clip = self._sampler.sample(step, index, self.total_steps)
        frames = torch.mul(torch.from_numpy(clip.frames).permute(0, 3, 1, 2), 1.0 / 255.0)  # T, 3, S, S in [0, 1]
        return frames, torch.from_numpy(clip.masks).float(), torch.from_numpy(clip.selector)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_sampler": None}


class ProcessLoader:
    """STCN's and XMem's loading: `FolderClipDataset` behind a `DataLoader` with `workers` worker processes."""

    def __init__(self, videos: dict[str, FolderVideo], dataset_uri: str, batch_size: int, *, workers: int,
                 config: DataConfig) -> None:
        self.videos, self.dataset_uri, self.batch_size = videos, dataset_uri, batch_size
        self.workers, self.config = workers, config

    def iterate(self, total_steps: int) -> Iterator[ClipBatch]:
        """Batches 0 .. total_steps-1, the same clips as `ClipLoader.iterate(total_steps)`."""
        dataset = FolderClipDataset(self.videos, self.dataset_uri, self.batch_size, self.config, total_steps)
        # workers start from a fork server: a process forked after OpenCV's thread pool has run (our augmentation
        # is OpenCV's) can hang in its first OpenCV call; startup falls in the benchmark's untimed batches
        context = "forkserver" if self.workers else None
        batches = iter(DataLoader(dataset, batch_size=self.batch_size, num_workers=self.workers,
                                  multiprocessing_context=context))
        try:
            for frames, masks, selector in batches:
                yield ClipBatch(frames, masks, selector)
        finally:
            del batches  # stops the worker processes

    def __enter__(self) -> ProcessLoader:
        return self

    def __exit__(self, *exc: object) -> None:
        pass
