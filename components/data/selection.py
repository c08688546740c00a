"""Which videos of a source a dataset keeps: named videos, exclusions, and a stable hashed hold-out split.

A hold-out split hashes each video's name with a seed, so the same video always falls on the same
side whatever else the source holds: `part: held` and `part: rest` with the same fraction and seed
are two disjoint halves of one source (steer on the held part, train on the rest).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

from components.errors import DataError


@dataclass(frozen=True)
class HoldOut:
    """A deterministic fraction of a source's videos (`held`) or everything else (`rest`)."""

    fraction: float
    part: Literal["held", "rest"]
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 < self.fraction < 1.0:
            raise ValueError(f"hold_out.fraction must lie in (0, 1), got {self.fraction}")

    def is_held(self, name: str) -> bool:
        """Whether `name` falls in the held fraction (uniform in [0, 1) from SHA-256 of seed and name)."""
        digest = hashlib.sha256(f"{self.seed}:{name}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64 < self.fraction

    def keeps(self, name: str) -> bool:
        return self.is_held(name) == (self.part == "held")


@dataclass(frozen=True)
class VideoSelection:
    """`videos`: only these (empty: all); `exclude`: never these; `hold_out`: one side of a hashed split."""

    videos: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    hold_out: HoldOut | None = None

    def __post_init__(self) -> None:
        both = sorted(set(self.videos) & set(self.exclude))
        if both:
            raise ValueError(f"video {both[0]!r} is both selected (videos) and excluded (exclude)")

    @property
    def is_everything(self) -> bool:
        return not self.videos and not self.exclude and self.hold_out is None

    def apply(self, names: list[str], where: str) -> list[str]:
        """The kept names, in order; a named video the source lacks is a `DataError` naming it."""
        missing = sorted(set(self.videos) - set(names))
        if missing:
            raise DataError(f"{where}: no video named {missing[0]!r} (selected in `videos`)")
        kept = [n for n in names if (not self.videos or n in self.videos) and n not in self.exclude
                and (self.hold_out is None or self.hold_out.keeps(n))]
        if not kept:
            raise DataError(f"{where}: the selection keeps none of its {len(names)} videos")
        return kept

    def to_json(self) -> dict:
        hold_out = None if self.hold_out is None else {
            "fraction": self.hold_out.fraction, "part": self.hold_out.part, "seed": self.hold_out.seed}
        return {"videos": list(self.videos), "exclude": list(self.exclude), "hold_out": hold_out}


def provably_disjoint(a: VideoSelection, b: VideoSelection) -> bool:
    """True when no video name can be kept by both selections of the same source, whatever it holds."""
    if a.videos and b.videos and not set(a.videos) & set(b.videos):
        return True
    if (a.videos and set(a.videos) <= set(b.exclude)) or (b.videos and set(b.videos) <= set(a.exclude)):
        return True
    if a.hold_out is not None and b.hold_out is not None:
        same_split = (a.hold_out.fraction, a.hold_out.seed) == (b.hold_out.fraction, b.hold_out.seed)
        return same_split and a.hold_out.part != b.hold_out.part
    return False
