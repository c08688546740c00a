"""`corrvos objective` resolves every schedule to each stage's own iterations."""

import argparse
from pathlib import Path

from components.config import CorrvosConfig, load_yaml_config
from components.losses.describe import describe_objective
from pipelines.commands import objective

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_released_config_prints_the_released_iterations_in_both_stages(capsys):
    assert objective.run(argparse.Namespace(config=str(CONFIGS / "stcn-released.yaml"), set=[])) == 0
    out = capsys.readouterr().out
    assert "pretrain (300000 iterations): lambda 0 until iteration 30000, 1 from 90000; CE keeps 100% of pixels " \
           "until 20000, 15% from 70000; gradient clipping off" in out
    assert "train (150000 iterations): lambda 0 until iteration 30000, 1 from 90000" in out
    assert "0.2 x pcl + 0.04 x cross_view" in out and "clipped" in out
    assert "departures from the release: none" in out


def test_fractions_resolve_to_iterations_and_departures_are_named():
    config = load_yaml_config(CorrvosConfig, CONFIGS / "demo.yaml",
                              ["loss.correspondence_log=exact", "loss.bootstrap_scope=batch"])
    lines = describe_objective(config.loss, {"train": config.train})
    assert any("train (1200 iterations): lambda 0 until iteration 240, 1 from 720" in line for line in lines)
    assert lines[-1].endswith("correspondence_log=exact, bootstrap_scope=batch")
