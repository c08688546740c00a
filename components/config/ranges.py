"""Range rules for config values, so a negative weight or a NaN learning rate is refused at load.

Each section's `__post_init__` calls `check_ranges` with its rules; a broken rule is a ValueError
naming the dotted key, the rule and the value (the loader turns it into a one-line ConfigError).
Every float of a section must be finite, whether or not a rule names it.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from collections.abc import Callable, Mapping
from typing import Any


@dataclass(frozen=True)
class Rule:
    """What a value must satisfy (`allows`) and how the error says so (`text`)."""

    allows: Callable[[Any], bool]
    text: str


def _finite(value: Any) -> bool:
    """A real number that is neither NaN nor infinite (bools are not numbers here)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def at_least(low: int) -> Rule:
    """A number >= `low`."""
    return Rule(lambda v: _finite(v) and v >= low, f">= {low}")


def between(low: float, high: float, low_open: bool = False) -> Rule:
    """A number in [low, high], or (low, high] with `low_open`."""
    above = (lambda v: v > low) if low_open else (lambda v: v >= low)
    return Rule(lambda v: _finite(v) and above(v) and v <= high, f"in {'(' if low_open else '['}{low}, {high}]")


def optional(rule: Rule) -> Rule:
    """`rule`, or null."""
    return Rule(lambda v: v is None or rule.allows(v), f"{rule.text} (or null)")


def each(rule: Rule) -> Rule:
    """A list whose every item satisfies `rule`."""
    return Rule(lambda v: all(rule.allows(x) for x in v), f"a list of values {rule.text}")


AT_LEAST_1 = at_least(1)
NON_NEGATIVE = Rule(lambda v: _finite(v) and v >= 0, ">= 0 and finite")
POSITIVE = Rule(lambda v: _finite(v) and v > 0, "> 0 and finite")
FRACTION = between(0, 1)


def _shown(value: Any) -> str:
    """The value as the YAML reader wrote it: lists for tuples, `nan` / `inf` for floats."""
    return repr(list(value)) if isinstance(value, tuple) else repr(value)


def check_ranges(config: Any, section: str, rules: Mapping[str, Rule]) -> None:
    """Raise ValueError for the first non-finite float field of `config` or the first field that breaks its rule."""
    check_finite(config, section, recurse=False)
    for name, rule in rules.items():
        value = getattr(config, name)
        if not rule.allows(value):
            raise ValueError(f"{_key(section, name)} must be {rule.text}, got {_shown(value)}")


def check_order(section: str, low_name: str, low: float, high_name: str, high: float) -> None:
    """Raise ValueError unless `low` <= `high` (a schedule's start and end)."""
    if not low <= high:
        raise ValueError(f"{_key(section, low_name)} ({low}) must not exceed {_key(section, high_name)} ({high})")


def check_finite(config: Any, section: str, recurse: bool = True) -> None:
    """Raise ValueError naming the first NaN or infinite float in `config` (and, with `recurse`, its sub-sections)."""
    for f in dataclasses.fields(config):
        _check_value(getattr(config, f.name), _key(section, f.name), recurse)


def _check_value(value: Any, key: str, recurse: bool) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{key} must be a finite number, got {value!r}")
    if isinstance(value, tuple):
        for i, item in enumerate(value):
            if isinstance(item, float) and not math.isfinite(item):
                raise ValueError(f"{key} must hold finite numbers, got {_shown(value)}")
            if recurse and dataclasses.is_dataclass(item):
                check_finite(item, f"{key}[{i}]")
    elif recurse and dataclasses.is_dataclass(value):
        check_finite(value, key)


def _key(section: str, name: str) -> str:
    return f"{section}.{name}" if section else name
