"""Strict config loading: presets, overrides, unknown keys and wrong types."""

import pytest

from components.config import CorrvosConfig, LossConfig, ModelConfig, apply_overrides, config_from_dict, config_to_dict, load_yaml_config
from components.errors import ConfigError


def test_presets_fill_values_and_explicit_keys_win():
    config = config_from_dict(CorrvosConfig, {"model": {"preset": "small", "value_dim": 96}, "loss": {"preset": "poster"}})
    assert config.model.key_backbone == "resnet18" and config.model.value_dim == 96
    assert config.loss.pcl_weight == 0.2 and config.loss.cross_view_weight == 0.0 and config.loss.ocl_weight > 0


@pytest.mark.parametrize(
    "preset,weights",
    [("released", (0.2, 0.04, 0.0)), ("baseline", (0.0, 0.0, 0.0))],
)
def test_loss_presets_match_method(preset, weights):
    loss = config_from_dict(LossConfig, {"preset": preset})
    assert (loss.pcl_weight, loss.cross_view_weight, loss.ocl_weight) == weights
    assert loss.uses_correspondence == (preset != "baseline")


def test_unknown_key_is_an_error_naming_the_key():
    with pytest.raises(ConfigError, match=r"model\.valu_dim"):
        config_from_dict(CorrvosConfig, {"model": {"valu_dim": 3}})
    with pytest.raises(ConfigError, match=r"'trian'"):
        config_from_dict(CorrvosConfig, {"trian": {}})


def test_wrong_types_and_values_are_errors():
    with pytest.raises(ConfigError, match=r"model\.key_dim: expected an integer"):
        config_from_dict(CorrvosConfig, {"model": {"key_dim": "sixty-four"}})
    with pytest.raises(ConfigError, match=r"key_backbone"):
        config_from_dict(ModelConfig, {"key_backbone": "vgg16"})
    with pytest.raises(ConfigError, match="preset"):
        config_from_dict(LossConfig, {"preset": "nope"})
    with pytest.raises(ConfigError, match="ramp"):
        config_from_dict(LossConfig, {"ramp_start": 0.8, "ramp_end": 0.2})


def test_dotted_overrides_parse_yaml_scalars(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model:\n  preset: small\n")
    config = load_yaml_config(CorrvosConfig, path, ["loss.pcl_weight=0.5", "model.decoder_dims=[32, 16, 16]"])
    assert config.loss.pcl_weight == 0.5
    assert config.model.decoder_dims == (32, 16, 16)
    with pytest.raises(ConfigError, match="key=value"):
        apply_overrides({}, ["loss.pcl_weight"])


def test_round_trip_through_a_plain_dict():
    config = config_from_dict(CorrvosConfig, {"model": {"preset": "small"}})
    assert config_from_dict(CorrvosConfig, config_to_dict(config)) == config


def test_missing_and_malformed_files_are_one_line_errors(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_yaml_config(CorrvosConfig, tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml"):
        load_yaml_config(CorrvosConfig, bad)
