"""A local try-it-out cluster on 127.0.0.1: moto_server (S3), an MLflow server with artifacts on it, a Ray head.

`python -m cluster.local up [--state-dir DIR]` starts all three and writes DIR/services.json and
DIR/env; `python -m cluster.local down [--state-dir DIR]` stops what services.json lists. Tests use
the same functions. Every port is picked free and nothing is stopped by name, because other
people's clusters may run on the same machine.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Mapping

from cluster.processes import (ServiceError, alive, free_port, http_answers, processes_naming, spawn, stop_group,
                               terminate, wait_until)
from components.errors import CorrvosError

DEFAULT_STATE_DIR = Path("runs/local-cluster")
BUCKET = "corrvos"
ARTIFACTS_DESTINATION = f"s3://{BUCKET}/mlflow-artifacts"
TEST_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
MAX_RAY_TEMP_DIR = 40  # Ray puts sockets at TEMP/session_<date>_<pid>/sockets/...; Unix caps the path at ~107


@dataclass
class Service:
    """One started server: its URL, the process group leader, and what `stop` needs to find the rest."""

    name: str
    url: str
    pid: int | None
    marker: str | None = None  # a string in the leader's command line, so a reused pid is never stopped
    dashboard_url: str | None = None  # Ray only: the dashboard and Job API
    temp_dir: str | None = None  # Ray only: its private temporary directory (removed on stop when under /tmp)
    log: str | None = None

    def stop(self) -> None:
        """Stop the process group (and, for Ray, every process naming its temp dir); safe to call twice."""
        stop_group(self.pid, self.marker)
        if self.temp_dir:
            terminate(processes_naming(self.temp_dir), grace_s=5.0)
            if self.temp_dir.startswith(tempfile.gettempdir() + "/cv-ray-"):
                shutil.rmtree(self.temp_dir, ignore_errors=True)
        self.pid = None

    def running(self) -> bool:
        """Whether the service's leader process still runs."""
        return alive(self.pid, self.marker)


@dataclass
class LocalCluster:
    """The three services of `up`, and the environment that points clients at them."""

    state_dir: Path
    s3: Service
    mlflow: Service
    ray: Service
    bucket: str = BUCKET
    services: list[Service] = field(init=False)

    def __post_init__(self) -> None:
        self.services = [self.s3, self.mlflow, self.ray]

    def env(self) -> dict[str, str]:
        """Variables for clients: Ray (GCS and Job API), MLflow tracking, S3 endpoint and test credentials."""
        return {"RAY_ADDRESS": self.ray.url, "RAY_API_SERVER_ADDRESS": self.ray.dashboard_url or "",
                **service_env(self.mlflow.url, self.s3.url), "CORRVOS_S3_BUCKET": self.bucket}

    def stop(self) -> None:
        """Stop every service, last started first."""
        for service in reversed(self.services):
            service.stop()


def service_env(mlflow_url: str, s3_endpoint: str) -> dict[str, str]:
    """MLflow tracking URI, S3 endpoint (MLflow, boto3, s3fs) and moto's test credentials."""
    return {"MLFLOW_TRACKING_URI": mlflow_url, "MLFLOW_S3_ENDPOINT_URL": s3_endpoint, "AWS_ENDPOINT_URL": s3_endpoint,
            **TEST_CREDENTIALS}


def start_moto_server(state_dir: Path, port: int | None = None) -> Service:
    """moto_server on 127.0.0.1 as the S3 endpoint (in memory: its buckets go when it stops)."""
    port = port or free_port()
    log = Path(state_dir) / "logs" / "moto.log"
    process = spawn("moto_server", [_tool("moto_server"), "-H", "127.0.0.1", "-p", str(port)], log)
    service = Service("s3", f"http://127.0.0.1:{port}", process.pid, marker="moto_server", log=str(log))
    _wait_or_stop(service, lambda: http_answers(service.url + "/"), process, log, timeout_s=60)
    return service


def start_mlflow_server(state_dir: Path, s3_endpoint: str | None, artifacts_destination: str,
                        port: int | None = None) -> Service:
    """An MLflow server (SQLite backend in `state_dir`) that proxies artifacts to `artifacts_destination`."""
    state_dir = Path(state_dir).resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    env = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}  # no background job runners on a small machine
    if s3_endpoint:
        env |= {"MLFLOW_S3_ENDPOINT_URL": s3_endpoint, **TEST_CREDENTIALS}
        if artifacts_destination.startswith("s3://"):
            create_bucket(s3_endpoint, artifacts_destination.removeprefix("s3://").split("/", 1)[0])
    port = port or free_port()
    log = state_dir / "logs" / "mlflow.log"
    command = [_tool("mlflow"), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
               "--backend-store-uri", f"sqlite:///{state_dir / 'mlflow.db'}",
               "--artifacts-destination", artifacts_destination]
    process = spawn("mlflow server", command, log, env=env)
    service = Service("mlflow", f"http://127.0.0.1:{port}", process.pid, marker="mlflow", log=str(log))
    _wait_or_stop(service, lambda: http_answers(service.url + "/health"), process, log, timeout_s=120)
    return service


def start_ray_head(state_dir: Path, port: int | None = None, dashboard_port: int | None = None,
                   num_cpus: int | None = None, env: Mapping[str, str] | None = None) -> Service:
    """`ray start --head --block` on 127.0.0.1 in its own process group; ready once the Job API answers.

    url is the GCS address (for `ray.init`), dashboard_url the Job API (for `corrvos submit`); `env`
    reaches every Ray worker and job driver, as a KubeRay pod's env does.
    """
    state_dir = Path(state_dir).resolve()
    temp_dir = _ray_temp_dir(state_dir)
    port, dashboard_port = port or free_port(), dashboard_port or free_port()
    log = state_dir / "logs" / "ray.log"
    command = [_tool("ray"), "start", "--head", "--block", "--disable-usage-stats",
               "--node-ip-address", "127.0.0.1", "--port", str(port),
               "--include-dashboard", "true", "--dashboard-host", "127.0.0.1", "--dashboard-port", str(dashboard_port),
               "--dashboard-agent-listen-port", str(free_port()),
               "--temp-dir", temp_dir]
    if num_cpus is not None:
        command += ["--num-cpus", str(num_cpus)]
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])  # jobs' `python` = ours
    ray_env = {**(env or {}), "PATH": path, "RAY_USAGE_STATS_ENABLED": "0", "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0",
               "RAY_AUTH_MODE": "disabled"}  # bound to 127.0.0.1; a real cluster uses token auth (docs/cluster.md)
    process = spawn("ray head", command, log, env=ray_env)
    dashboard_url = f"http://127.0.0.1:{dashboard_port}"
    service = Service("ray", f"127.0.0.1:{port}", process.pid, marker=temp_dir, dashboard_url=dashboard_url,
                      temp_dir=temp_dir, log=str(log))
    _wait_or_stop(service, lambda: http_answers(dashboard_url + "/api/jobs/", max_status=299), process, log, timeout_s=180)
    return service


def up(state_dir: Path = DEFAULT_STATE_DIR, num_cpus: int | None = None,
       artifacts_destination: str = ARTIFACTS_DESTINATION) -> LocalCluster:
    """Start moto, MLflow and a Ray head; write services.json and env. On failure stop what started, one-line error."""
    state_dir = Path(state_dir).resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    running = [s.name for s in _read_services(state_dir) if s.running()]
    if running:
        raise CorrvosError(f"a local cluster from {state_dir} is still running ({', '.join(running)}): "
                           f"run `python -m cluster.local down --state-dir {state_dir}` first")
    started: list[Service] = []
    try:
        started.append(start_moto_server(state_dir))
        started.append(start_mlflow_server(state_dir, started[0].url, artifacts_destination))
        started.append(start_ray_head(state_dir, num_cpus=num_cpus, env=service_env(started[1].url, started[0].url)))
    except BaseException:
        for service in reversed(started):
            service.stop()
        raise
    cluster = LocalCluster(state_dir, *started, bucket=artifacts_destination.removeprefix("s3://").split("/")[0])
    _write_state(cluster)
    return cluster


def down(state_dir: Path = DEFAULT_STATE_DIR) -> list[str]:
    """Stop the services listed in state_dir/services.json (idempotent); returns their names."""
    state_dir = Path(state_dir).resolve()
    services = _read_services(state_dir)
    for service in reversed(services):
        service.stop()
    (state_dir / "services.json").unlink(missing_ok=True)
    (state_dir / "env").unlink(missing_ok=True)
    return [s.name for s in services]


def create_bucket(s3_endpoint: str, bucket: str) -> None:
    """Create `bucket` on the S3 endpoint (already there is fine)."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    client = boto3.client("s3", endpoint_url=s3_endpoint, aws_access_key_id="testing",
                          aws_secret_access_key="testing", region_name="us-east-1")
    try:
        client.create_bucket(Bucket=bucket)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise ServiceError(f"cannot create bucket {bucket!r} on {s3_endpoint}: {_one_line(exc)}") from None
    except BotoCoreError as exc:
        raise ServiceError(f"cannot create bucket {bucket!r} on {s3_endpoint}: {_one_line(exc)}") from None


def _one_line(exc: Exception) -> str:
    """An exception's text on one line (botocore's validation errors span several)."""
    return " ".join(str(exc).split())[:300]


def _wait_or_stop(service: Service, ready: Callable[[], bool], process: subprocess.Popen, log: Path,
                  timeout_s: float) -> None:
    """Wait for the service to answer; if it does not, stop it before raising."""
    try:
        wait_until(service.name, ready, process, log, timeout_s)
    except BaseException:
        service.stop()
        raise


def _ray_temp_dir(state_dir: Path) -> str:
    """`state_dir/ray` when that path is short enough for Ray's Unix sockets, else a fresh /tmp/cv-ray-XXXX."""
    candidate = state_dir / "ray"
    if len(str(candidate)) <= MAX_RAY_TEMP_DIR:
        candidate.mkdir(parents=True, exist_ok=True)
        return str(candidate)
    return tempfile.mkdtemp(prefix="cv-ray-", dir=tempfile.gettempdir())


def _tool(name: str) -> str:
    """A console script from this interpreter's environment (so it works without an activated venv)."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else (shutil.which(name) or name)


def _write_state(cluster: LocalCluster) -> None:
    """services.json (for `down`) and env (KEY=VALUE lines, for `set -a; . env; set +a`)."""
    state = {"services": [asdict(s) for s in cluster.services], "env": cluster.env()}
    (cluster.state_dir / "services.json").write_text(json.dumps(state, indent=2) + "\n")
    (cluster.state_dir / "env").write_text("".join(f"{k}={v}\n" for k, v in cluster.env().items()))


def _read_services(state_dir: Path) -> list[Service]:
    """The services recorded in state_dir/services.json ([] when there is none)."""
    path = state_dir / "services.json"
    if not path.exists():
        return []
    try:
        return [Service(**entry) for entry in json.loads(path.read_text())["services"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise CorrvosError(f"{path}: not a services file written by `cluster.local up` ({exc})") from None


def main(argv: list[str] | None = None) -> int:
    """`python -m cluster.local up|down [--state-dir DIR]`."""
    parser = argparse.ArgumentParser(prog="python -m cluster.local", description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("up", "down"))
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR, help="default: %(default)s")
    parser.add_argument("--num-cpus", type=int, default=None, help="CPUs the Ray head offers (up only)")
    args = parser.parse_args(argv)
    try:
        if args.action == "up":
            cluster = up(args.state_dir, num_cpus=args.num_cpus)
            for service in cluster.services:
                print(f"{service.name:7s} {service.url}" + (f"  (jobs: {service.dashboard_url})" if service.dashboard_url else ""))
            print(f"env: set -a; . {cluster.state_dir / 'env'}; set +a")
        else:
            stopped = down(args.state_dir)
            print(f"stopped: {', '.join(stopped)}" if stopped else f"nothing running from {args.state_dir}")
    except CorrvosError as exc:
        print(f"cluster.local {args.action}: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
