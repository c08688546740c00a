"""`corrvos version`: print the package version and the versions of the parts it runs on."""

from __future__ import annotations

import argparse
import platform
from importlib import metadata

NAME = "version"
HELP = "print corrvos's version and those of torch, ray and mlflow"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--all", action="store_true", help="also list the main dependencies")


def run(args: argparse.Namespace) -> int:
    print(f"corrvos {metadata.version('corrvos')}")
    if args.all:
        print(f"python {platform.python_version()}")
        for package in ("torch", "ray", "mlflow", "pyarrow", "fsspec", "numpy"):
            try:
                print(f"{package} {metadata.version(package)}")
            except metadata.PackageNotFoundError:
                print(f"{package} (not installed)")
    return 0
