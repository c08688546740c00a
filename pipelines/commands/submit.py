"""`corrvos submit`: run the pipeline on a Ray cluster as a Ray Job and follow its logs.

Secrets in the config or `--set` reach the job only through its environment (`cluster.submit`).
"""

from __future__ import annotations

import argparse

from components.errors import CorrvosError

NAME = "submit"
HELP = "submit `corrvos run CONFIG` to a Ray cluster as a Ray Job (uploads the project) and follow its logs"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", nargs="?", default=None, help="YAML config file (travels with the upload)")
    parser.add_argument("--address", default=None,
                        help="the cluster's Job API, http://HEAD:8265 (default: $RAY_API_SERVER_ADDRESS)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
    parser.add_argument("--no-wait", action="store_true", help="print the job id and return instead of following")
    parser.add_argument("--pip", action="store_true", help="install the project's dependencies (pyproject.toml) for the job")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                        help="environment variable for the job (repeatable)")
    parser.add_argument("--entrypoint", default=None, metavar="COMMAND",
                        help="run this shell command in the uploaded project instead of `corrvos run CONFIG`")


def run(args: argparse.Namespace) -> int:
    from cluster.submit import PROJECT_ROOT, follow_job, job_failure, project_dependencies, submit_job, submit_pipeline

    env_vars = _parse_env(args.env)
    if args.entrypoint:
        if args.config or args.set:
            raise CorrvosError("--entrypoint replaces CONFIG and --set; give one or the other")
        packages = project_dependencies() if args.pip else ()
        job_id = submit_job(args.address, args.entrypoint, PROJECT_ROOT, pip=packages, env_vars=env_vars)
    elif args.config:
        job_id = submit_pipeline(args.address, args.config, args.set, pip=args.pip, env_vars=env_vars)
    else:
        raise CorrvosError("give a CONFIG file to run (or --entrypoint COMMAND)")
    if args.no_wait:
        print(job_id)
        return 0
    print(f"submitted job {job_id}", flush=True)
    status = follow_job(args.address, job_id)
    if status != "SUCCEEDED":
        raise job_failure(args.address, job_id, status)
    print(f"job {job_id} {status}")
    return 0


def _parse_env(items: list[str]) -> dict[str, str]:
    """`KEY=VALUE` strings -> a dict; a malformed one is a one-line error."""
    env = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:  # the item may be a value given without its name: never echo it
            raise CorrvosError("--env: expected KEY=VALUE, got an item without '='")
        if not key or not key.replace("_", "").isalnum():
            raise CorrvosError(f"--env {key!r}=...: expected KEY=VALUE with KEY a variable name")
        env[key] = value
    return env
