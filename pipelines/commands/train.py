"""`corrvos train`: run one training stage (pretrain or train) on Ray Train, tracked in MLflow."""

from __future__ import annotations

import argparse

from cluster.connect import ray_cluster
from components.config import CorrvosConfig, load_yaml_config
from pipelines.cli import local_path_or_uri

NAME = "train"
HELP = "run the pretrain or train stage on Ray Train workers (resumes from the stage's latest checkpoint)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="YAML config file")
    parser.add_argument("--stage", choices=("pretrain", "train"), required=True)
    parser.add_argument("--data", action="append", required=True, type=local_path_or_uri,
                        help="ingested dataset URI or folder (repeatable)")
    parser.add_argument("--out", required=True, type=local_path_or_uri, help="stage output URI (checkpoints, model.pt)")
    parser.add_argument("--init", default=None, type=local_path_or_uri,
                        help="inference weights to start from (e.g. the pretrain stage's model.pt)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
    parser.add_argument("--address", default=None, help="Ray cluster address (default: start a local Ray)")


def run(args: argparse.Namespace) -> int:
    from components.storage import check_storage_root
    from pipelines.training.stage import check_inputs, dataset_version
    from pipelines.training.tracked import run_tracked_training_stage

    config = load_yaml_config(CorrvosConfig, args.config, args.set)
    dataset_version(args.data, config.storage.options)  # a missing manifest fails here: one line, before Ray starts
    check_inputs(args.init, None, config.storage.options)
    check_storage_root(args.out, config.storage.options)
    with ray_cluster(args.address):
        outputs = run_tracked_training_stage(config, args.stage, args.data, args.out, args.init)
    for key, value in outputs.items():
        print(f"{key}: {value}")
    return 0
