"""Checks that catch masks which read fine but mean something else: anti-aliased id masks, a sequence
whose masks mix palette and grayscale files, a sequence without its first-frame mask.

Anti-aliasing (a mask resized with bilinear interpolation, or drawn with smooth edges, then saved as
a palette PNG) turns every object border into a ramp of blend colours, each one a palette index that
reads as an object id. Real annotations (DAVIS, YouTube-VOS) hold a few ids, each a solid region;
blend ids are numerous, thin (almost every pixel of one touches another id) and lie between two or
more other ids. `antialiasing_evidence` counts such ids; a mask is refused when they are many and
most of its ids.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from components.errors import DataError

VOID_ID = 255
MIN_BLEND_IDS = 8  # fewer thin in-between ids than this is never called anti-aliasing
BLEND_SHARE = 0.5  # ... and they must be more than this share of all ids
THIN_INTERIOR = 0.25  # an id with fewer than this share of pixels away from any other id is thin
_KERNEL = np.ones((3, 3), np.uint8)


@dataclass(frozen=True)
class AntialiasEvidence:
    """What `antialiasing_evidence` found: ids in the mask (0 and 255 excluded) and the blend-like ones."""

    ids: int
    blend_ids: int

    @property
    def antialiased(self) -> bool:
        return self.blend_ids >= MIN_BLEND_IDS and self.blend_ids > BLEND_SHARE * self.ids


def antialiasing_evidence(labels: np.ndarray) -> AntialiasEvidence:
    """Count the object ids of a label map and those that look like anti-aliasing blends.

    A blend id is thin (under `THIN_INTERIOR` of its pixels have a 3x3 neighbourhood of its own id
    only) and borders at least two other ids (0, 255 and other blends count). A mask with fewer than
    `MIN_BLEND_IDS` ids is not examined further.
    """
    labels = np.asarray(labels)
    if labels.ndim != 2 or labels.size == 0 or labels.min() < 0 or labels.max() > 255:
        return AntialiasEvidence(0, 0)
    labels = labels.astype(np.uint8, copy=False)
    area = np.bincount(labels.ravel(), minlength=256)
    object_ids = np.flatnonzero(area[1:VOID_ID]) + 1
    if object_ids.size < MIN_BLEND_IDS:
        return AntialiasEvidence(int(object_ids.size), 0)
    interior = cv2.erode(labels, _KERNEL, borderType=cv2.BORDER_REPLICATE) == cv2.dilate(
        labels, _KERNEL, borderType=cv2.BORDER_REPLICATE
    )
    solid = np.bincount(labels[interior], minlength=256)
    neighbours = _neighbour_counts(labels)
    thin = solid[object_ids] < THIN_INTERIOR * area[object_ids]
    between = neighbours[object_ids] >= 2
    return AntialiasEvidence(int(object_ids.size), int(np.count_nonzero(thin & between)))


def _neighbour_counts(labels: np.ndarray) -> np.ndarray:
    """For each label value 0..255, how many distinct other values touch it (8-neighbourhood)."""
    pairs = np.zeros(256 * 256, bool)
    shifted = (
        (labels[:, :-1], labels[:, 1:]),
        (labels[:-1, :], labels[1:, :]),
        (labels[:-1, :-1], labels[1:, 1:]),
        (labels[:-1, 1:], labels[1:, :-1]),
    )
    for a, b in shifted:
        differ = a != b
        if differ.any():
            a, b = a[differ].astype(np.int32), b[differ].astype(np.int32)
            pairs[a * 256 + b] = True
            pairs[b * 256 + a] = True
    return pairs.reshape(256, 256).sum(axis=1)


def check_not_antialiased(labels: np.ndarray, where: str) -> None:
    """Raise `DataError` naming `where` when the label map looks like an anti-aliased mask."""
    evidence = antialiasing_evidence(labels)
    if evidence.antialiased:
        raise DataError(
            f"{where}: looks anti-aliased ({evidence.ids} ids, {evidence.blend_ids} of them covering almost only "
            "border pixels between other ids); save masks with nearest-neighbour resizing, one palette index per object"
        )


def check_same_mode(sequence: str, first: tuple[str, str], other: tuple[str, str]) -> None:
    """Raise `DataError` when two masks of one sequence, each (shown path, PIL mode), are not both palette
    (P) or both grayscale: the same pixel value would mean an object id in one and a binary mask in the other."""
    if (first[1] == "P") == (other[1] == "P"):
        return
    palette, grey = (first, other) if first[1] == "P" else (other, first)
    raise DataError(
        f"sequence {sequence!r} mixes mask modes: {palette[0]} is palette (P), {grey[0]} is grayscale ({grey[1]}); "
        "save every mask of a sequence the same way"
    )


def first_mask_missing(sequence: str, expected: str, first_mask: str | None) -> DataError:
    """The error for a sequence whose first frame has no mask: `expected` is the mask file it lacks,
    `first_mask` the sequence's first mask file (None when it has none)."""
    found = f"its first mask is {first_mask}" if first_mask else "it has no masks at all"
    return DataError(
        f"{expected}: sequence {sequence!r} has no mask for its first frame ({found}); "
        "propagation starts from the first frame's mask"
    )
