"""`corrvos objective`: print the training objective a config resolves to, per stage, without training."""

from __future__ import annotations

import argparse

from components.config import CorrvosConfig, load_yaml_config

NAME = "objective"
HELP = "print the resolved loss terms, forms and schedules (in each stage's iterations) of a config"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="YAML config file")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")


def run(args: argparse.Namespace) -> int:
    from components.losses.describe import describe_objective

    config = load_yaml_config(CorrvosConfig, args.config, args.set)
    for line in describe_objective(config.loss, {"pretrain": config.pretrain, "train": config.train}):
        print(line)
    return 0
