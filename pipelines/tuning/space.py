"""The search space: dotted config keys -> distributions, checked against the schema before any trial runs.

    tune:
      space:
        loss.pcl_weight: {loguniform: [0.05, 0.8]}
        loss.ocl_weight: {uniform: [0.0, 0.3]}
        train.optimizer: {choice: [adam, adamw]}

A trial's sampled values are applied as `--set`-style overrides on the resolved config, strictly:
a value the schema refuses fails the search up front, not in a trial minutes later.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import yaml
from ray import tune

from components.config import CorrvosConfig, apply_overrides, config_from_dict, config_to_dict
from components.errors import ConfigError
from pipelines.tracking import flatten_config

DISTRIBUTIONS = ("loguniform", "uniform", "choice")
UNTUNABLE_SECTIONS = ("tune.", "tracking.", "storage.", "pipeline.")  # the search's own settings and plumbing


@dataclass(frozen=True)
class Dimension:
    """One searched config key: `kind` is a name of DISTRIBUTIONS, `values` its bounds or choices."""

    key: str
    kind: str
    values: tuple[Any, ...]

    def domain(self) -> Any:
        """The Ray Tune sampler for this dimension."""
        if self.kind == "loguniform":
            return tune.loguniform(*self.values)
        if self.kind == "uniform":
            return tune.uniform(*self.values)
        return tune.choice(list(self.values))

    def examples(self) -> list[Any]:
        """Values that exercise the schema check: both bounds, or every choice."""
        return list(self.values)


def schema_keys() -> set[str]:
    """Every dotted leaf key of the config schema (`loss.pcl_weight`, `train.learning_rate`, ...)."""
    return set(flatten_config(config_to_dict(CorrvosConfig())))


def parse_space(space: Mapping[str, Any], base: CorrvosConfig | None = None) -> list[Dimension]:
    """Check `space` (tune.space) and return its dimensions; a bad entry is a one-line ConfigError.

    With `base`, every bound and choice is also applied to it, so a value the schema refuses
    (a float for an int key, a choice outside a Literal) is caught here.
    """
    if not isinstance(space, Mapping) or not space:
        raise ConfigError("tune.space: expected a non-empty mapping of dotted config keys to distributions")
    known = schema_keys()
    dimensions = []
    for key, spec in space.items():
        where = f"tune.space.{key}"
        if not isinstance(key, str) or key not in known:
            raise ConfigError(f"{where}: {key!r} is not a config key (expected a dotted key such as loss.pcl_weight)")
        if key.startswith(UNTUNABLE_SECTIONS):
            raise ConfigError(f"{where}: keys under {', '.join(s.rstrip('.') for s in UNTUNABLE_SECTIONS)} cannot be tuned")
        dimension = _dimension(key, spec, where)
        if base is not None:
            for value in dimension.examples():
                try:
                    config_with_overrides(base, {key: value})
                except ConfigError as exc:
                    raise ConfigError(f"{where}: {value!r} is refused by the config ({exc})") from None
        dimensions.append(dimension)
    return dimensions


def param_space(dimensions: list[Dimension]) -> dict[str, Any]:
    """Ray Tune's `param_space`: the dotted key -> its sampler."""
    return {d.key: d.domain() for d in dimensions}


def config_with_overrides(config: CorrvosConfig, overrides: Mapping[str, Any]) -> CorrvosConfig:
    """`config` with each dotted key set to its value, rebuilt strictly through the schema."""
    items = [f"{key}={_yaml_scalar(value)}" for key, value in overrides.items()]
    return config_from_dict(CorrvosConfig, apply_overrides(config_to_dict(config), items))


def plain(value: Any) -> Any:
    """A sampled value as a plain Python value (Tune may hand out numpy scalars)."""
    return value.item() if hasattr(value, "item") else value


def _dimension(key: str, spec: Any, where: str) -> Dimension:
    if not isinstance(spec, Mapping) or len(spec) != 1:
        raise ConfigError(f"{where}: expected one distribution, e.g. {{loguniform: [0.05, 0.8]}}, got {spec!r}")
    ((kind, values),) = spec.items()
    if kind not in DISTRIBUTIONS:
        raise ConfigError(f"{where}: unknown distribution {kind!r} (choose from {', '.join(DISTRIBUTIONS)})")
    if not isinstance(values, (list, tuple)) or not values:
        raise ConfigError(f"{where}: {kind} needs a list, got {values!r}")
    if kind == "choice":
        return Dimension(key, kind, tuple(values))
    if len(values) != 2 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        raise ConfigError(f"{where}: {kind} needs [low, high] numbers, got {values!r}")
    low, high = float(values[0]), float(values[1])
    if not low < high:
        raise ConfigError(f"{where}: {kind} needs low < high, got [{low}, {high}]")
    if kind == "loguniform" and low <= 0:
        raise ConfigError(f"{where}: loguniform needs low > 0, got {low}")
    return Dimension(key, kind, (low, high))


def _yaml_scalar(value: Any) -> str:
    """One-line YAML for an override value; `1.0e-05`, not `1e-05`, which YAML would read as a string."""
    text = yaml.safe_dump(plain(value), default_flow_style=True, width=10**9)
    return text.split("\n", 1)[0]
