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
    lr = [line.strip() for line in out.splitlines() if line.strip().startswith("learning rate")]
    assert lr == ["learning rate 5e-05 (layer-wise groups 0.2x / 0.4x / 1x), x0.1 from iteration 250000 "
                  "(lr_drop_at [250000] in iterations)",
                  "learning rate 5e-05 (layer-wise groups 0.2x / 0.4x / 1x), x0.1 from iteration 125000 "
                  "(lr_drop_at [125000] in iterations)"]


def test_xmem_config_prints_its_drops_and_a_stage_without_one(capsys):
    assert objective.run(argparse.Namespace(config=str(CONFIGS / "xmem-released.yaml"), set=[])) == 0
    out = capsys.readouterr().out
    assert "learning rate 1e-05, never dropped" in out
    assert "learning rate 1e-05, x0.1 from iteration 80000 (lr_drop_at [80000] in iterations)" in out


def test_a_tune_length_train_stage_prints_its_rescaled_drop(capsys):
    overrides = ["train.lr_drop_unit=fraction", f"train.lr_drop_at=[{125_000 / 150_000!r}]", "train.iterations=600"]
    assert objective.run(argparse.Namespace(config=str(CONFIGS / "stcn-released.yaml"), set=overrides)) == 0
    assert "x0.1 from iteration 500 (lr_drop_at [0.8333333333333334] in fraction)" in capsys.readouterr().out


def test_fractions_resolve_to_iterations_and_departures_are_named():
    config = load_yaml_config(CorrvosConfig, CONFIGS / "demo.yaml",
                              ["loss.correspondence_log=exact", "loss.bootstrap_scope=batch"])
    lines = describe_objective(config.loss, {"train": config.train})
    assert any("train (1200 iterations): lambda 0 until iteration 240, 1 from 720" in line for line in lines)
    assert lines[-1].endswith("correspondence_log=exact, bootstrap_scope=batch")
    assert "    learning rate 0.0004, x0.1 from iteration 840 (lr_drop_at [0.7] in fraction)" in lines
    cosine = load_yaml_config(CorrvosConfig, CONFIGS / "demo.yaml", ["train.lr_schedule=cosine"])
    assert "    learning rate 0.0004, half cosine over the stage down to 4e-05" in \
        describe_objective(cosine.loss, {"train": cosine.train})
