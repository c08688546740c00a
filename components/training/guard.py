"""Stop training on a non-finite loss instead of training on garbage."""

from __future__ import annotations

import math

import torch

from components.errors import CorrvosError


class NonFiniteLossError(CorrvosError):
    """A loss term became NaN or infinite; the last good checkpoint is kept."""


def check_finite(terms: dict[str, torch.Tensor], step: int) -> dict[str, float]:
    """Return the terms as floats, or raise naming every non-finite term and the step."""
    values = {name: float(value.detach()) for name, value in terms.items()}
    bad = sorted(name for name, value in values.items() if not math.isfinite(value))
    if bad:
        raise NonFiniteLossError(f"non-finite loss at step {step}: {', '.join(f'{n}={values[n]}' for n in bad)}")
    return values
