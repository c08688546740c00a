"""Ray Tune over config keys (loss weights, learning rate): trials on Ray Train, ASHA on validation J&F."""

from pipelines.tuning.runner import TuningFailed, apply_best, read_trials, run_tune
from pipelines.tuning.space import Dimension, config_with_overrides, parse_space

__all__ = ["Dimension", "TuningFailed", "apply_best", "config_with_overrides", "parse_space", "read_trials", "run_tune"]
