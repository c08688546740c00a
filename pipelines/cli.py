"""The `corrvos` command: discovers sub-commands in `pipelines.commands` and runs one.

A `CorrvosError` (bad input, bad config) becomes one line on stderr and exit status 1. Local paths
that reach Ray workers are made absolute here, where they are parsed (`local_path_or_uri`): Ray Train's
workers run in another folder, so a relative `--data runs/data/x` would name nothing there.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import re
import sys
from types import ModuleType

import pipelines.commands
from components.errors import CorrvosError

URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:/")  # s3://, file://, gs://, models:/ (a one-letter scheme is a drive)


def local_path_or_uri(value: str) -> str:
    """argparse type: a URI as given; a local path made absolute against the working directory, `~` expanded."""
    if not value or URI.match(value):
        return value
    return os.path.abspath(os.path.expanduser(value))


def _command_modules() -> list[ModuleType]:
    names = sorted(m.name for m in pkgutil.iter_modules(pipelines.commands.__path__) if not m.name.startswith("_"))
    return [importlib.import_module(f"pipelines.commands.{name}") for name in names]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="corrvos",
        description="Video object segmentation training with space-time correspondence learning.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in _command_modules():
        command = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        module.add_arguments(command)
        command.set_defaults(handler=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except CorrvosError as exc:
        print(f"corrvos {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"corrvos {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
