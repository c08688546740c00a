"""`corrvos tune`: Ray Tune over the config's search space, each trial a short `train` stage on Ray Train."""

from __future__ import annotations

import argparse

from cluster.connect import ray_cluster
from components.config import CorrvosConfig, load_yaml_config
from pipelines.cli import local_path_or_uri

NAME = "tune"
HELP = "search loss weights and learning rate with Ray Tune (ASHA on validation J&F); resumes an unfinished search"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="YAML config file (section `tune` holds the search space)")
    parser.add_argument("--data", action="append", required=True, type=local_path_or_uri,
                        help="ingested training dataset URI (repeatable)")
    parser.add_argument("--val", action="append", required=True, type=local_path_or_uri,
                        help="ingested validation dataset URI (repeatable)")
    parser.add_argument("--out", required=True, type=local_path_or_uri, help="output URI (Tune experiment, trials, best.json)")
    parser.add_argument("--init", default=None, type=local_path_or_uri,
                        help="inference weights every trial starts from (e.g. the pretrain stage's model.pt)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
    parser.add_argument("--address", default=None, help="Ray cluster address (default: start a local Ray)")


def run(args: argparse.Namespace) -> int:
    from components.storage import check_storage_root
    from pipelines.tuning import parse_space, read_trials, run_tune

    config = load_yaml_config(CorrvosConfig, args.config, args.set)
    parse_space(config.tune.space, config)  # a bad search space fails before Ray starts
    check_storage_root(args.out, config.storage.options)
    with ray_cluster(args.address):
        outputs = run_tune(config, args.data, args.val, args.out, args.init)
    rows = read_trials(outputs["trials"], config.storage.options)
    print(format_trials(rows))
    best = max((row for row in rows if row["val_jf"] is not None), key=lambda row: row["val_jf"])
    print(f"best: trial {best['trial']}  val_jf {best['val_jf']:.4f}  {_overrides(best['overrides'])}")
    for key, value in outputs.items():
        print(f"{key}: {value}")
    return 0


def format_trials(rows: list[dict]) -> str:
    """A plain-text table: trial, overrides, last val_jf, iterations reached, status."""
    table = [("trial", "overrides", "val_jf", "iterations", "status")]
    for row in rows:
        score = f"{row['val_jf']:.4f}" if row["val_jf"] is not None else "-"
        table.append((row["trial"] or "?", _overrides(row["overrides"]), score, str(row["step"] or 0), row["status"]))
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in table)


def _overrides(overrides: dict) -> str:
    return " ".join(f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}" for key, value in overrides.items())
