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


@pytest.mark.parametrize("path", [p for p in CONFIGS if p.name.startswith("xmem-")], ids=lambda p: p.name)
def test_xmem_fine_tune_tail_starts_at_iteration_100k(path):
    """XMem's s3 is 100K iterations plus a 10K tail without per-frame rotation/shear; the clip sampler
    turns it on where progress = step / iterations first reaches `plain_after`."""
    config = load_yaml_config(CorrvosConfig, path)
    total = config.train.iterations
    assert total == 110_000
    assert 99_999 / total < config.data.augment.plain_after <= 100_000 / total
