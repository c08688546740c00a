"""Learning-rate drops in one unambiguous form per stage (`lr_drop_unit`), resolved to the iterations the worker uses."""

import re
from pathlib import Path

import pytest

from components.config import CorrvosConfig, StageConfig, config_from_dict, config_to_dict, load_yaml_config
from components.config.run_sections import STAGE_PRESETS, first_iteration_reaching
from components.errors import ConfigError

CONFIGS = Path(__file__).resolve().parents[1] / "configs"

# The official MultiStepLR milestones (STCN / VOS_Correspondence util/hyper_para.py, XMem util/configuration.py).
RELEASED_DROPS = {
    "stcn-released.yaml": ((250_000,), (125_000,)),
    "stcn-poster.yaml": ((250_000,), (125_000,)),
    "stcn-baseline.yaml": ((250_000,), (125_000,)),
    "xmem-released.yaml": ((), (80_000,)),
    "xmem-baseline.yaml": ((), (80_000,)),
}


@pytest.mark.parametrize("name", sorted(RELEASED_DROPS))
def test_paper_configs_drop_at_the_released_iterations(name):
    config = load_yaml_config(CorrvosConfig, CONFIGS / name)
    assert (config.pretrain.lr_drop_unit, config.train.lr_drop_unit) == ("iterations", "iterations")
    assert (config.pretrain.lr_drop_steps, config.train.lr_drop_steps) == RELEASED_DROPS[name]


@pytest.mark.parametrize("preset,iterations,drops", [
    ("stcn-s0", 300_000, (250_000,)), ("stcn-s3", 150_000, (125_000,)),
    ("stcn-original-s0", 300_000, (150_000,)), ("stcn-original-s3", 150_000, (125_000,)),
    ("xmem-s0", 150_000, ()), ("xmem-s3", 110_000, (80_000,)),
])
def test_stage_presets_state_the_recipes_milestones(preset, iterations, drops):
    stage = config_from_dict(StageConfig, {"preset": preset})
    assert (stage.iterations, stage.lr_drop_steps) == (iterations, drops)


def test_a_fraction_drops_where_progress_first_reaches_it():
    demo = load_yaml_config(CorrvosConfig, CONFIGS / "demo.yaml")
    assert (demo.pretrain.lr_drop_steps, demo.train.lr_drop_steps) == ((200,), (840,))
    # why paper-scale configs state iterations: 0.8333 of 150K is not the released 125,000
    assert first_iteration_reaching(0.8333, 150_000) == 124_995
    assert first_iteration_reaching(0.0, 7) == 0 and first_iteration_reaching(1.0, 7) == 7  # 1.0: never within
    for iterations in (1, 3, 7, 10, 600, 1200):
        for fraction in (0.0, 0.1, 0.2, 1 / 3, 0.5, 0.7, 0.8, 0.8333, 5 / 6, 0.9999, 1.0):
            expected = next((s for s in range(iterations + 1) if s / iterations >= fraction), iterations)
            assert first_iteration_reaching(fraction, iterations) == expected, (fraction, iterations)


REFUSED = [
    # (overrides, what the one-line error must say)
    (["train.preset=stcn-s3", "train.lr_drop_at=[0.8333]"],
     r"train\.lr_drop_at must be a list of whole iterations in \[0, 1200\] \(train\.lr_drop_unit is iterations; "
     r"for stage fractions set train\.lr_drop_unit: fraction\), got \[0\.8333\]"),
    (["train.lr_drop_at=[125000]"],
     r"train\.lr_drop_at must be a list of stage fractions in \[0, 1\] \(train\.lr_drop_unit is fraction; "
     r"for iterations set train\.lr_drop_unit: iterations\), got \[125000\.0\]"),
    (["pretrain.preset=stcn-s0", "pretrain.iterations=1000"],  # shortened, the released drop would never happen
     r"pretrain\.lr_drop_at must be a list of whole iterations in \[0, 1000\] .*got \[250000\.0\]"),
    (["train.lr_drop_unit=iterations", "train.lr_drop_at=[300.5]"], r"train\.lr_drop_at .*got \[300\.5\]"),
    (["train.lr_drop_unit=epochs"], r"train\.lr_drop_unit: 'epochs' is not one of \['iterations', 'fraction'\]"),
]


@pytest.mark.parametrize("overrides,message", REFUSED, ids=[" ".join(o) for o, _ in REFUSED])
def test_a_drop_in_the_wrong_unit_is_refused_naming_the_keys(tmp_path, overrides, message):
    path = tmp_path / "c.yaml"
    path.write_text("pretrain: {preset: demo}\ntrain: {preset: demo, iterations: 1200}\n")
    with pytest.raises(ConfigError) as error:
        load_yaml_config(CorrvosConfig, path, overrides)
    assert "\n" not in str(error.value)
    assert re.search(message, str(error.value)), str(error.value)


def test_iterations_up_to_the_stage_end_are_accepted():
    stage = config_from_dict(StageConfig, {"preset": "demo", "iterations": 300, "lr_drop_unit": "iterations",
                                           "lr_drop_at": [300, 0, 150]})
    assert stage.lr_drop_steps == (0, 150, 300)


def test_in_fractions_keeps_the_drops_where_a_shortened_stage_would_have_them():
    released = config_from_dict(StageConfig, {"preset": "stcn-s3"})
    scaled = released.in_fractions()
    assert scaled.lr_drop_unit == "fraction" and scaled.lr_drop_at == pytest.approx((125_000 / 150_000,))
    assert scaled.lr_drop_steps == (125_000,)  # the full stage still drops at the released iteration
    trial = config_from_dict(StageConfig, {**config_to_dict(scaled), "iterations": 600})
    assert trial.lr_drop_steps == (500,)
    xmem = config_from_dict(StageConfig, {"preset": "xmem-s3"}).in_fractions()
    assert config_from_dict(StageConfig, {**config_to_dict(xmem), "iterations": 600}).lr_drop_steps == (437,)  # 80K of 110K
    demo = config_from_dict(StageConfig, {"preset": "demo"})
    assert demo.in_fractions() is demo
    assert STAGE_PRESETS["demo"]["lr_drop_unit"] == "fraction"

