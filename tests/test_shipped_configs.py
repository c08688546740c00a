"""Every YAML file shipped in configs/ loads under the strict schema."""

from pathlib import Path

import pytest

from components.config import CorrvosConfig, load_yaml_config

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


def test_there_are_configs():
    assert CONFIGS


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_config_loads(path):
    config = load_yaml_config(CorrvosConfig, path)
    assert config.model.preset in {"small", "stcn", "xmem"}
    assert config.registered_model == f"corrvos-{config.model.name}"
