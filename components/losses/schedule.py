"""Schedules driven by a stage's progress fraction in [0, 1], so short runs behave like long ones."""

from __future__ import annotations


def _linear(progress: float, start: float, end: float) -> float:
    """0 before `start`, 1 after `end`, linear between."""
    if progress < start:
        return 0.0
    if progress >= end or end <= start:
        return 1.0
    return (progress - start) / (end - start)


def correspondence_ramp(progress: float, start: float = 0.2, end: float = 0.6) -> float:
    """lambda of the correspondence terms: released 30K -> 90K of 150K iterations = 0.2 -> 0.6."""
    return _linear(progress, start, end)


def bootstrap_fraction(progress: float, start: float, end: float, top_p: float) -> float:
    """Fraction of hardest pixels the bootstrapped CE keeps: 1 until `start`, then down to `top_p` at `end`."""
    return 1.0 - (1.0 - top_p) * _linear(progress, start, end)
