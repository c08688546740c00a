"""`corrvos status CONFIG`: each stage's state, output URI and MLflow run, without running anything.

A stage recorded as running is checked against the process that runs it: one whose pid is gone from
this host shows as `interrupted (pid N gone)`; one on another host as `running on HOST (pid N)`.
"""

from __future__ import annotations

import argparse

NAME = "status"
HELP = ("show each pipeline stage: done / reused / running / interrupted / failed / not started, "
        "its output URI and MLflow run")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="YAML config file")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")


def run(args: argparse.Namespace) -> int:
    from components.config import CorrvosConfig, load_yaml_config
    from pipelines.dag.engine import pipeline_status
    from pipelines.dag.report import format_table

    config = load_yaml_config(CorrvosConfig, args.config, args.set)
    rows = [[r.name, r.state, r.uri, r.mlflow_run_id or "-"] for r in pipeline_status(config)]
    print(format_table(["stage", "state", "output", "mlflow run"], rows))
    return 0
