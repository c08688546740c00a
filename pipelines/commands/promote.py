"""`corrvos promote`: move alias `champion` to a registered model version by hand, whatever its J&F."""

from __future__ import annotations

import argparse
from pathlib import Path

NAME = "promote"
HELP = "make version N of the registered model the champion (by hand) and print the decision"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--version", required=True, type=int, metavar="N", help="the model version to promote")
    parser.add_argument("--name", help="registered model name (default: the config's tracking.registered_model, else corrvos-<model.name>)")
    parser.add_argument("--config", type=Path, metavar="CONFIG",
                        help="YAML config whose tracking section gives the defaults (default: the built-in ones)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key, e.g. tracking.mlflow_uri=http://127.0.0.1:5000 (repeatable)")
    parser.add_argument("--tracking-uri", metavar="URI",
                        help="MLflow tracking URI (default: the config's tracking.mlflow_uri)")


def run(args: argparse.Namespace) -> int:
    from components.config import CorrvosConfig, apply_overrides, config_from_dict, load_yaml_config
    from components.errors import CorrvosError
    from pipelines.registry import promote_by_hand
    from pipelines.tracking import resolve_tracking_uri

    if args.version < 1:
        raise CorrvosError(f"--version {args.version}: model versions start at 1")
    if args.config is not None:
        config = load_yaml_config(CorrvosConfig, args.config, args.overrides)
    else:
        config = config_from_dict(CorrvosConfig, apply_overrides({}, args.overrides))
    tracking_uri = resolve_tracking_uri(args.tracking_uri or config.tracking.mlflow_uri)
    name = args.name or config.registered_model
    decision = promote_by_hand(tracking_uri, name, args.version)
    before = (f"v{decision.champion_version} (J&F {_jf(decision.champion_jf)})"
              if decision.champion_version is not None else "none")
    print(f"{name} v{decision.version} (J&F {_jf(decision.jf)}) is now {decision.alias} ({decision.reason}); "
          f"champion before: {before}")
    print(f"models:/{name}@{decision.alias}")
    return 0


def _jf(value: float | None) -> str:
    return f"{value:.4f}" if value is not None else "unknown"
