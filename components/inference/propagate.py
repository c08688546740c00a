"""STCN propagation (METHOD_REFERENCE §5.1 "Inference"): the first masks start the memory, every
`memory_every`-th frame is added with its predicted masks, each frame reads memory with top-k.

Frames are H,W,3 uint8 RGB arrays; annotations map a frame index to an H,W label map whose
non-zero values are object ids (255 = void, ignored). Objects join at the frame of their first mask.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Mapping

import numpy as np
import torch
from tqdm import tqdm

from components.config.schema import InferenceConfig
from components.errors import DataError
from components.inference.frames import FrameGeometry, given_masks
from components.inference.memory_store import MemoryStore
from components.model import memory_read
from components.model.inference_form import inference_form
from components.model.stcn import STCN
from components.precision import autocast_for



@dataclass(frozen=True)
class FrameProbabilities:
    """One frame's soft output: float32 1+O,H,W at the frame's size, background then `object_ids` (join order)."""

    index: int
    object_ids: tuple[int, ...]
    probabilities: np.ndarray


@dataclass
class PropagationResult:
    labels: list[np.ndarray]  # one H,W label map per frame (object ids, 0 = background)
    object_ids: list[int]
    memory_frames: list[int]  # every frame that entered the memory, in order
    compute_seconds: float  # model time, I/O excluded
    frame_count: int = field(default=0)

    @property
    def fps(self) -> float:
        return self.frame_count / self.compute_seconds if self.compute_seconds > 0 else float("nan")


class VideoPropagator:
    """Runs one video at a time through an inference network with a bounded memory (STCN's memory here;
    `XMemPropagator` swaps in XMem's). Subclasses provide `_new_state` and `_segment`.

    With `keep_probabilities`, each label map yielded leaves its soft output in `last_probabilities`:
    (object ids in join order, float32 array 1+O,H,W at the frame's size: background, then those objects).
    """

    def __init__(self, model: STCN, config: InferenceConfig, device: torch.device | str | None = None,
                 keep_probabilities: bool = False) -> None:
        self.device = torch.device(device) if device is not None else next(model.parameters()).device
        self.model = inference_form(model).to(self.device)  # a folded, channels-last copy: `model` is untouched
        self.config = config
        self.keep_probabilities = keep_probabilities
        self.last_probabilities: tuple[tuple[int, ...], np.ndarray] | None = None

    def _autocast(self):
        return autocast_for(self.device, self.config.precision)

    def _new_state(self) -> "_VideoState":
        return _VideoState(memory=MemoryStore(self.config.max_memory_frames))

    def propagate(
        self, frames: Iterable[np.ndarray], annotations: Mapping[int, np.ndarray], progress: bool = False
    ) -> PropagationResult:
        """Segment every frame; returns all label maps and timing."""
        state = self._new_state()
        labels = [lab for lab in self.iter_labels(frames, annotations, state, progress)]
        return PropagationResult(labels, state.object_ids, state.memory_frames, state.seconds, len(labels))

    def iter_labels(
        self,
        frames: Iterable[np.ndarray],
        annotations: Mapping[int, np.ndarray],
        state: "_VideoState | None" = None,
        progress: bool = False,
    ) -> Iterator[np.ndarray]:
        """Yield one label map per frame as soon as it is computed (streams long videos)."""
        state = state or self._new_state()
        for _, object_probs in self._iter_segmented(frames, annotations, state, progress):
            start = time.perf_counter()
            label = self._to_label(object_probs, state)
            state.seconds += time.perf_counter() - start
            yield label

    def iter_probabilities(
        self, frames: Iterable[np.ndarray], annotations: Mapping[int, np.ndarray], progress: bool = False
    ) -> Iterator["FrameProbabilities"]:
        """Yield each frame's soft output at the frame's size (what `predict --save-probabilities` stores,
        and what parity checks compare with the official code's probabilities)."""
        state = self._new_state()
        for index, object_probs in self._iter_segmented(frames, annotations, state, progress):
            with torch.inference_mode():
                full = self._original_probabilities(object_probs, state)
            yield FrameProbabilities(index, tuple(state.object_ids), full.cpu().numpy())

    def _iter_segmented(
        self, frames: Iterable[np.ndarray], annotations: Mapping[int, np.ndarray], state: "_VideoState", progress: bool
    ) -> Iterator[tuple[int, torch.Tensor]]:
        """(frame index, object probabilities 1,O,H',W' on the padded grid) per frame, model time in `state.seconds`."""
        if not annotations:
            raise DataError("no annotated frame: propagation needs at least the first frame's mask")
        bar = tqdm(frames, desc="propagate", unit="frame", disable=not progress)
        with torch.inference_mode(), self._autocast():
            for index, frame in enumerate(bar):
                if state.geometry is None:
                    state.geometry = FrameGeometry.for_size(
                        frame.shape[0], frame.shape[1], self.config.max_short_side,
                        min_short_side=self.config.min_short_side, padding=self.config.padding)
                elif frame.shape[:2] != (state.geometry.height, state.geometry.width):
                    raise DataError(f"frame {index} is {frame.shape[1]}x{frame.shape[0]}, the video is "
                                     f"{state.geometry.width}x{state.geometry.height}")
                start = time.perf_counter()
                x = state.geometry.frame_to_tensor(frame, self.device).contiguous(memory_format=torch.channels_last)
                object_probs = self._segment(index, x, annotations.get(index), state)
                state.seconds += time.perf_counter() - start
                yield index, object_probs

    def _segment(self, index: int, x: torch.Tensor, annotation: np.ndarray | None, state: "_VideoState") -> torch.Tensor:
        """One frame: read memory, decode, apply given masks, update memory -> object probs 1,O,H',W'."""
        features = self.model.encode_key(x)
        object_probs = self._predict(features, state)  # 1, O, H', W' on the padded grid (may be O = 0)
        joined = False
        if annotation is not None:
            object_probs, joined = self._apply_annotation(index, annotation, object_probs, state)
        if not state.object_ids:
            return object_probs
        is_memory = joined or index % self.config.memory_every == 0
        if is_memory or self.config.include_last:
            values = self.model.encode_value(x, features.f16, object_probs)
            if is_memory:
                state.memory.add(index, features.key, values, permanent=joined)
                state.memory_frames.append(index)
            else:
                state.memory.set_last(index, features.key, values)
        return object_probs

    def _original_probabilities(self, object_probs: torch.Tensor, state: "_VideoState") -> torch.Tensor:
        """Object probabilities on the padded grid -> float32 1+O,H,W at the original size (background first)."""
        geometry = state.geometry
        if not state.object_ids:
            return torch.ones(1, geometry.height, geometry.width)
        return geometry.probs_to_original(self._with_background(object_probs).float())[0]

    def _to_label(self, object_probs: torch.Tensor, state: "_VideoState") -> np.ndarray:
        """Object probabilities on the padded grid -> an H,W label map of object ids at the original size."""
        geometry = state.geometry
        if not state.object_ids:
            if self.keep_probabilities:
                self.last_probabilities = ((), np.ones((1, geometry.height, geometry.width), dtype=np.float32))
            return np.zeros((geometry.height, geometry.width), dtype=np.uint8)
        full = self._original_probabilities(object_probs, state)[None]
        if self.keep_probabilities:
            self.last_probabilities = (tuple(state.object_ids), full[0].cpu().numpy())
        # max(dim).indices, not argmax: the same first-maximum index, but CPU argmax over the leading
        # dim of a cropped view is not vectorised (64 ms vs 2 ms per 480p frame)
        slot = full[0].max(dim=0).indices  # H, W: 0 background, k the k-th object
        # ids are looked up where the tensor lives, so one byte per pixel (not eight) reaches the host
        wide = max(state.object_ids) > 255
        ids = torch.tensor([0, *state.object_ids], dtype=torch.int32 if wide else torch.uint8, device=slot.device)
        label = ids[slot].cpu().numpy()
        return label.astype(np.uint16) if wide else label

    def _predict(self, features, state: "_VideoState") -> torch.Tensor:
        """Read memory per object group and decode all objects together."""
        count = len(state.object_ids)
        h, w = features.f4.shape[-2] * 4, features.f4.shape[-1] * 4
        if count == 0:
            return torch.zeros(1, 0, h, w, device=self.device)
        query = features.key.flatten(start_dim=2)  # 1, Ck, HW
        readout = None
        for slots, keys, rows in state.memory.groups(state.join_frames):  # views of the appended buffers
            part = memory_read.read_rows(keys, rows, query, self.config.top_k)  # 1, HW, O_g*Cv: a group at once
            if readout is None:
                readout = part.new_zeros(1, count, part.shape[2] // (slots.stop - slots.start), *features.key.shape[-2:])
            readout[:, slots] = part.transpose(1, 2).reshape(1, slots.stop - slots.start, -1, *features.key.shape[-2:])
        logits, _ = self.model.segment(features, readout)
        return torch.softmax(logits, dim=1)[:, 1:]

    def _apply_annotation(
        self, index: int, annotation: np.ndarray, predicted: torch.Tensor, state: "_VideoState"
    ) -> tuple[torch.Tensor, bool]:
        """Given masks override predictions where they label a pixel; new ids join the video."""
        onehot, labelled, joined = given_masks(annotation, index, state.geometry, state.object_ids,
                                               state.join_frames, self.device)  # 1,O,H',W' and 1,1,H',W'
        previous = torch.zeros_like(onehot)
        previous[:, : predicted.shape[1]] = predicted.to(onehot.dtype)
        if index == 0 or not predicted.shape[1]:
            return onehot, joined
        return previous * (1 - labelled) + onehot, joined

    @staticmethod
    def _with_background(object_probs: torch.Tensor) -> torch.Tensor:
        background = (1 - object_probs.sum(dim=1, keepdim=True)).clamp(min=0)
        return torch.cat([background, object_probs], dim=1)


@dataclass
class _VideoState:
    memory: Any  # MemoryStore (STCN) or XMemMemory
    hidden: torch.Tensor | None = None  # XMem's sensory memory, 1,O,Ch,h,w
    object_ids: list[int] = field(default_factory=list)
    join_frames: list[int] = field(default_factory=list)
    memory_frames: list[int] = field(default_factory=list)
    geometry: FrameGeometry | None = None
    seconds: float = 0.0
