"""`corrvos run`: the whole pipeline (ingest -> pretrain -> [tune] -> train -> evaluate -> register -> promote)."""

from __future__ import annotations

import argparse
import json

NAME = "run"
HELP = "run the whole pipeline DAG on Ray, reusing every stage already done (resumes after a crash)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_pipeline_arguments(parser)


def add_pipeline_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="YAML config file")
    parser.add_argument("--address", default=None, help="Ray cluster address (default: start a local Ray)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
    parser.add_argument("--summary-json", default=None, metavar="FILE", help="write the run's summary as JSON")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    return run_and_report(args, rerun=None)


def run_and_report(args: argparse.Namespace, rerun: str | None) -> int:
    """Load the config, run the DAG on the cluster, print the tables, write the summary."""
    from cluster.connect import ray_cluster
    from components.config import CorrvosConfig, load_yaml_config
    from components.storage import check_storage_root
    from pipelines.dag.engine import check_inputs, resolve_locations, run_pipeline
    from pipelines.dag.report import print_report

    config = load_yaml_config(CorrvosConfig, args.config, args.set)
    resolved = resolve_locations(config)
    # one line and no Ray start-up on an unreachable storage root, a bad path or server
    check_storage_root(resolved.storage.root, resolved.storage.options)
    signatures = check_inputs(resolved)
    with ray_cluster(args.address):
        result = run_pipeline(config, rerun=rerun, progress=not args.no_progress, signatures=signatures)
    summary = result.summary()
    if args.summary_json:
        from components.storage import atomic_write_bytes

        atomic_write_bytes(args.summary_json, json.dumps(summary, indent=2).encode())
    print_report(result)
    return 0
