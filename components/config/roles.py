"""Dataset roles keep steering and reporting apart: what shapes a model never scores it.

`pretrain` and `train` fit the weights and `val` steers (tune trials, validation curves, any
selection); `test` only reports (evaluate, register, promote), and `predict-only` (a benchmark set
without public ground truth) is only predicted and packed for the benchmark's server. A config whose test data could be
steering data is refused before anything runs: a source in both kinds of roles, or two sources that
read the same data without provably disjoint video selections.
"""

from __future__ import annotations

from typing import Protocol

from components.data.selection import VideoSelection, provably_disjoint

STEERING_ROLES = ("pretrain", "train", "val")
REPORTING_ROLE = "test"
PREDICT_ONLY_ROLE = "predict-only"
HELD_OUT_ROLES = (REPORTING_ROLE, PREDICT_ONLY_ROLE)  # never steer, never train
ROLES = (*STEERING_ROLES, *HELD_OUT_ROLES)


class SourceLike(Protocol):
    name: str
    kind: str
    source: str
    roles: tuple[str, ...]
    split: str | None
    resolution: str | None
    select: VideoSelection


def data_identity(source: SourceLike) -> tuple:
    """What names the underlying videos: a synthetic generator's seed, else kind, location and split.

    Synthetic videos depend on (seed, index) and their size only rescales them, so one seed is one
    set of videos whatever the other spec keys say.
    """
    if source.kind == "synthetic":
        from components.data.synthetic import parse_spec

        return ("synthetic", parse_spec(source.source).seed)
    return (source.kind, source.source.rstrip("/"), source.split, source.resolution)


def steering_test_clash(sources: tuple[SourceLike, ...]) -> str | None:
    """Why a test source could hold steering videos (None when every test source is apart)."""
    for source in sources:
        steering = [r for r in source.roles if r in STEERING_ROLES]
        held = [r for r in source.roles if r in HELD_OUT_ROLES]
        if held and steering:
            return (f"dataset {source.name!r} has roles {held[0]!r} and {steering[0]!r}: "
                    "a test set must not steer or train; give the steering role to another dataset")
    tests = [s for s in sources if any(r in HELD_OUT_ROLES for r in s.roles)]
    steerers = [s for s in sources if any(r in STEERING_ROLES for r in s.roles)]
    for test in tests:
        for other in steerers:
            if data_identity(test) == data_identity(other) and not provably_disjoint(test.select, other.select):
                role = next(r for r in other.roles if r in STEERING_ROLES)
                return (f"test dataset {test.name!r} and {role} dataset {other.name!r} read the same videos "
                        f"({_shown(test)}) without disjoint selections: split them with select.videos / "
                        "select.exclude or select.hold_out parts held and rest")
    return None


def _shown(source: SourceLike) -> str:
    return f"synthetic seed {data_identity(source)[1]}" if source.kind == "synthetic" else source.source
