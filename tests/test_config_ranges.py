"""Config ranges are checked at load: a bad value is a one-line ConfigError naming the dotted key and the value."""

import re

import pytest

from components.config import CorrvosConfig, config_from_dict, load_yaml_config
from components.errors import ConfigError

# (override, the value as the error prints it): each must be refused at load, naming its dotted key.
REFUSED = [
    ("loss.pcl_weight=-0.1", "-0.1"),
    ("loss.cross_view_weight=.nan", "nan"),
    ("loss.ocl_weight=.inf", "inf"),
    ("loss.seg_weight=-1", "-1.0"),
    ("loss.dice_weight=.nan", "nan"),
    ("loss.ramp_end=1.5", "1.5"),
    ("loss.ramp_start=0.273", "0.273"),  # a stage fraction where the schedule is in iterations
    ("loss.bootstrap_end=-1", "-1.0"),
    ("loss.bootstrap_top_p=0", "0.0"),
    ("loss.anchor_grid=0", "0"),
    ("train.learning_rate=-0.001", "-0.001"),
    ("train.learning_rate=0", "0.0"),
    ("pretrain.learning_rate=.nan", "nan"),
    ("train.learning_rate=.inf", "inf"),
    ("train.iterations=0", "0"),
    ("pretrain.batch_size=0", "0"),
    ("train.num_workers=0", "0"),
    ("train.cpus_per_worker=0", "0"),
    ("train.weight_decay=-1.0", "-1.0"),
    ("train.lr_gamma=0", "0.0"),
    ("train.lr_drop_at=[0.5, 1.5]", "[0.5, 1.5]"),
    ("train.lr_drop_at=[.nan]", "[nan]"),
    ("train.lr_drop_at=[240]", "[240.0]"),  # an iteration where the demo preset states fractions
    ("train.grad_clip=-3.0", "-3.0"),
    ("train.max_failures=-1", "-1"),
    ("train.seed=-5", "-5"),
    ("model.deep_update_prob=1.5", "1.5"),
    ("model.value_dim=0", "0"),
    ("model.decoder_dims=[64, 0, 32]", "[64, 0, 32]"),
    ("inference.memory_every=0", "0"),
    ("tune.val_videos=0", "0"),
    ("tune.cpus_per_trial=0", "0"),
    ("evaluate.max_videos=0", "0"),
    ("probe.radius=.nan", "nan"),
    ("probe.temperature=-1.0", "-1.0"),
    ("tracking.promote_margin=-0.01", "-0.01"),
    ("pipeline.stage_retries=-1", "-1"),
    ("data.augment.frame_rotation=.nan", "nan"),  # a section whose own checks live elsewhere: still finite
    ("data.static_augment.tps_sigma=-.inf", "-inf"),
]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """A config file with the demo's sections, so every override lands on a real config."""
    path = tmp_path_factory.mktemp("ranges") / "c.yaml"
    path.write_text("model: {preset: small}\npretrain: {preset: demo}\ntrain: {preset: demo}\n")
    return path


@pytest.mark.parametrize("override,shown", REFUSED, ids=[o for o, _ in REFUSED])
def test_out_of_range_values_are_refused_naming_the_key_and_value(demo, override, shown):
    key = override.split("=")[0]
    with pytest.raises(ConfigError) as error:
        load_yaml_config(CorrvosConfig, demo, [override])
    message = str(error.value)
    assert "\n" not in message
    section, _, leaf = key.rpartition(".")
    named = rf"(^|\s)({re.escape(key)}|{re.escape(section)}: {re.escape(leaf)})\b"  # data sections: "data.augment: x"
    assert re.search(named, message), message
    assert re.search(rf"\b{re.escape(shown)}|{re.escape(shown)}$", message), message


def test_nan_in_the_yaml_file_is_refused(tmp_path):
    path = tmp_path / "nan.yaml"
    path.write_text("loss:\n  pcl_weight: .nan\ntrain:\n  learning_rate: .NaN\n")
    with pytest.raises(ConfigError, match=r"loss\.pcl_weight .*nan"):
        load_yaml_config(CorrvosConfig, path)


def test_nan_given_with_set_is_refused(demo):
    with pytest.raises(ConfigError, match=r"loss\.pcl_weight"):
        load_yaml_config(CorrvosConfig, demo, ["loss.pcl_weight=nan"])  # YAML reads `nan` as a string


def test_a_schedule_that_ends_before_it_starts_is_refused(demo):
    with pytest.raises(ConfigError, match=r"loss\.bootstrap_start \(50000\.0\) must not exceed loss\.bootstrap_end \(40000\.0\)"):
        load_yaml_config(CorrvosConfig, demo, ["loss.bootstrap_start=50000", "loss.bootstrap_end=40000"])
    with pytest.raises(ConfigError, match=r"loss\.bootstrap_start \(0\.5\) must not exceed loss\.bootstrap_end \(0\.4\)"):
        load_yaml_config(CorrvosConfig, demo, ["loss.schedule_unit=fraction", "loss.ramp_start=0.2", "loss.ramp_end=0.6",
                                               "loss.bootstrap_start=0.5", "loss.bootstrap_end=0.4"])


def test_fraction_schedules_must_lie_in_zero_one(demo):
    with pytest.raises(ConfigError, match=r"loss\.ramp_start must be in \[0, 1\], got 30000\.0"):
        load_yaml_config(CorrvosConfig, demo, ["loss.schedule_unit=fraction"])  # the iteration defaults left in place


def test_a_dataset_entry_is_named_by_its_position():
    sources = [{"name": "a", "kind": "synthetic", "roles": ["train"], "repeat": 0},
               {"name": "b", "kind": "synthetic", "roles": ["test"]}]
    with pytest.raises(ConfigError, match=r"pipeline\.sources\[0\]: repeat must be >= 1, got 0"):
        config_from_dict(CorrvosConfig, {"pipeline": {"sources": sources}})


@pytest.mark.parametrize("override", ["loss.pcl_weight=0", "train.learning_rate=1.0e-6", "train.grad_clip=null",
                                      "train.lr_drop_at=[]", "pipeline.stage_retries=0", "loss.ramp_start=90000",
                                      "probe.radius=null", "train.fail_at_step=0"])
def test_boundary_values_are_accepted(demo, override):
    load_yaml_config(CorrvosConfig, demo, [override])


def test_stage_retries_defaults_to_one():
    config = CorrvosConfig()
    assert config.pipeline.stage_retries == 1
    assert config_from_dict(CorrvosConfig, {"pipeline": {"stage_retries": 3}}).pipeline.stage_retries == 3


DATA_REFUSED = [
    ("data.augment.frame_rotation=-1", "data.augment: frame_rotation"),
    ("data.augment.crop_ratio=[2.0, 1.0]", "data.augment: crop_ratio"),
    ("data.augment.plain_after=2", "data.augment: plain_after"),
    ("data.static_augment.scale=[1.5, 0.8]", "data.static_augment: scale"),
    ("data.static_augment.tps_sigma=-0.1", "data.static_augment: tps_sigma"),
]


@pytest.mark.parametrize("override,named", DATA_REFUSED, ids=[o for o, _ in DATA_REFUSED])
def test_data_section_ranges_are_refused_naming_section_and_key(demo, override, named):
    with pytest.raises(ConfigError, match=re.escape(named)):
        load_yaml_config(CorrvosConfig, demo, [override])


def test_exponent_floats_without_a_dot_read_as_numbers(demo):
    """PyYAML's YAML 1.1 reads `1e-4` as a string; a user writing a learning rate means the number."""
    config = load_yaml_config(CorrvosConfig, demo, ["train.learning_rate=1e-4", "loss.pcl_weight=2E-1"])
    assert config.train.learning_rate == pytest.approx(1e-4) and config.loss.pcl_weight == pytest.approx(0.2)
