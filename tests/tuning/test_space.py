"""The search space: dotted keys checked against the schema, distributions checked, overrides applied strictly."""

import json

import pytest

from components.config import CorrvosConfig
from components.config.schema import DEFAULT_TUNE_SPACE
from components.errors import ConfigError
from pipelines.tuning import apply_best, config_with_overrides, parse_space


def test_default_space_parses_into_its_four_dimensions():
    dimensions = parse_space(DEFAULT_TUNE_SPACE, CorrvosConfig())
    assert [(d.key, d.kind) for d in dimensions] == [
        ("loss.pcl_weight", "loguniform"), ("loss.cross_view_weight", "loguniform"),
        ("loss.ocl_weight", "uniform"), ("train.learning_rate", "loguniform"),
    ]
    assert dimensions[0].values == (0.05, 0.8)


def test_choice_keeps_its_values():
    (dimension,) = parse_space({"train.optimizer": {"choice": ["adam", "adamw"]}}, CorrvosConfig())
    assert dimension.kind == "choice" and dimension.values == ("adam", "adamw")


@pytest.mark.parametrize("space, message", [
    ({"loss.pcl": {"uniform": [0, 1]}}, "tune.space.loss.pcl: 'loss.pcl' is not a config key"),
    ({"loss": {"uniform": [0, 1]}}, "'loss' is not a config key"),
    ({"loss.pcl_weight": {"normal": [0, 1]}}, "unknown distribution 'normal' (choose from loguniform, uniform, choice)"),
    ({"loss.pcl_weight": {"loguniform": [0.0, 1.0]}}, "loguniform needs low > 0"),
    ({"loss.pcl_weight": {"uniform": [1.0, 0.5]}}, "needs low < high"),
    ({"loss.pcl_weight": {"uniform": [0.1]}}, "needs [low, high] numbers"),
    ({"loss.pcl_weight": {"uniform": [0, 1], "choice": [1]}}, "expected one distribution"),
    ({"loss.pcl_weight": 0.3}, "expected one distribution"),
    ({"train.optimizer": {"choice": ["sgd"]}}, "'sgd' is refused by the config"),
    ({"train.iterations": {"uniform": [10, 20]}}, "is refused by the config"),
    ({"tune.seed": {"choice": [1, 2]}}, "cannot be tuned"),
    ({}, "non-empty mapping"),
])
def test_a_bad_space_is_one_line_naming_the_key(space, message):
    with pytest.raises(ConfigError) as error:
        parse_space(space, CorrvosConfig())
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_overrides_keep_small_floats_as_numbers():
    config = config_with_overrides(CorrvosConfig(), {"train.learning_rate": 1e-5, "loss.ocl_weight": 0.0})
    assert config.train.learning_rate == 1e-5 and config.loss.ocl_weight == 0.0


def test_apply_best_sets_the_overrides_and_refuses_a_missing_file(tmp_path):
    best = tmp_path / "best.json"
    best.write_text(json.dumps({"overrides": {"loss.pcl_weight": 0.123, "loss.ocl_weight": 0.05}, "val_jf": 0.5}))
    config = apply_best(CorrvosConfig(), str(best))
    assert (config.loss.pcl_weight, config.loss.ocl_weight) == (0.123, 0.05)
    assert config.loss.cross_view_weight == CorrvosConfig().loss.cross_view_weight
    with pytest.raises(ConfigError, match="no such tuning result"):
        apply_best(CorrvosConfig(), str(tmp_path / "missing.json"))


def test_a_trial_keeps_the_stage_schedule_shape_when_the_config_states_iterations():
    from pathlib import Path

    from components.config import load_yaml_config
    from pipelines.tuning.runner import _trial_config

    config = load_yaml_config(CorrvosConfig, Path(__file__).resolve().parents[2] / "configs" / "stcn-released.yaml")
    trial = _trial_config(config)
    assert trial.train.iterations == config.tune.iterations
    assert trial.loss.schedule_unit == "fraction"
    assert (trial.loss.ramp_start, trial.loss.ramp_end) == pytest.approx((0.2, 0.6))  # 30K -> 90K of 150K
    assert (trial.loss.bootstrap_start, trial.loss.bootstrap_end) == pytest.approx((20 / 150, 70 / 150))
    assert trial.train.lr_drop_unit == "fraction" and trial.train.lr_drop_steps == (500,)  # 125K of 150K, at 600
    demo = load_yaml_config(CorrvosConfig, Path(__file__).resolve().parents[2] / "configs" / "demo.yaml")
    assert _trial_config(demo).loss == demo.loss  # fractions already
    assert _trial_config(demo).train.lr_drop_at == demo.train.lr_drop_at
