"""The loss schedules: the correspondence weight ramp and the bootstrapped-CE keep fraction.

Both are functions of a position in the stage, counted in the unit `loss.schedule_unit` names:
`iterations` (the released code's `it`, 0-based, restarting at 0 in every stage) or `fraction` of the
stage's iterations (short runs such as the demo). The formulas are the released ones, operation for
operation, so the keep fraction and hence the number of kept pixels agree exactly.
"""

from __future__ import annotations

from typing import Literal

ScheduleUnit = Literal["iterations", "fraction"]


def schedule_position(unit: ScheduleUnit, progress: float, iteration: int | None) -> float:
    """The stage position in `unit`: the 0-based iteration, or the fraction of the stage done."""
    if unit == "fraction":
        return progress
    if iteration is None:
        raise ValueError("loss.schedule_unit is 'iterations' but no iteration was given to the objective")
    return float(iteration)


def correspondence_ramp(position: float, start: float = 30_000, end: float = 90_000) -> float:
    """lambda of the correspondence terms: 0 before `start`, linear to 1 at `end` (released: 30K -> 90K)."""
    if position < start:
        return 0.0
    if position < end:
        return (position - start) / (end - start)
    return 1.0


def bootstrap_fraction(position: float, start: float, end: float, top_p: float) -> float:
    """Fraction of hardest pixels the bootstrapped CE keeps: 1 before `start`, down to `top_p` at `end`.

    Written as STCN/XMem's `BootstrappedCE` writes it (released 20K -> 70K), so `int(pixels * p)` matches.
    """
    if position < start:
        return 1.0
    if position > end or end <= start:
        return top_p
    return top_p + (1 - top_p) * ((end - position) / (end - start))
