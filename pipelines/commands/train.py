"""`corrvos train`: run one training stage (pretrain or train) on Ray Train, tracked in MLflow."""

from __future__ import annotations

import argparse

from cluster.connect import ray_cluster
from components.config import CorrvosConfig, load_yaml_config

NAME = "train"
HELP = "run the pretrain or train stage on Ray Train workers (resumes from the stage's latest checkpoint)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="YAML config file")
    parser.add_argument("--stage", choices=("pretrain", "train"), required=True)
    parser.add_argument("--data", action="append", required=True, help="ingested dataset URI (repeatable)")
    parser.add_argument("--out", required=True, help="stage output URI (checkpoints, model.pt)")
    parser.add_argument("--init", default=None, help="inference weights to start from (e.g. the pretrain stage's model.pt)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
    parser.add_argument("--address", default=None, help="Ray cluster address (default: start a local Ray)")


def run(args: argparse.Namespace) -> int:
    from pipelines.training.tracked import run_tracked_training_stage

    config = load_yaml_config(CorrvosConfig, args.config, args.set)
    with ray_cluster(args.address):
        outputs = run_tracked_training_stage(config, args.stage, args.data, args.out, args.init)
    for key, value in outputs.items():
        print(f"{key}: {value}")
    return 0
