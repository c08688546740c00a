"""`corrvos rerun STAGE CONFIG`: run one stage again (new outputs) and everything downstream of it."""

from __future__ import annotations

import argparse

from pipelines.commands.run import add_pipeline_arguments, run_and_report
from pipelines.dag.graph import STAGE_ORDER

NAME = "rerun"
HELP = "run STAGE again with new outputs, and every stage after it; upstream stages are reused"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("stage", choices=STAGE_ORDER, help="the stage to run again")
    add_pipeline_arguments(parser)


def run(args: argparse.Namespace) -> int:
    return run_and_report(args, rerun=args.stage)
