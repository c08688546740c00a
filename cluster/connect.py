"""Get a Ray cluster: join one at an address, or start a local one on this machine.

Before `ray.init` joins a GCS address, one gRPC call to the GCS with a deadline (`probe_gcs`) says
whether it is a Ray GCS at all and whether it accepts this process's token: `ray.init` itself waits
without limit on a port that accepts TCP but never answers, and reports a refused token as
"cannot reach" after ~20 s of retries.
"""

from __future__ import annotations

import os
import socket
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Mapping

import ray

from components.errors import CorrvosError

CONNECT_TIMEOUT_ENV = "CORRVOS_RAY_CONNECT_TIMEOUT_S"
DEFAULT_CONNECT_TIMEOUT_S = 20.0
K8S_TOKEN_PATHS = ("/var/run/secrets/ray.io/serviceaccount/token",
                   "/var/run/secrets/kubernetes.io/serviceaccount/token")


class ClusterUnreachable(CorrvosError):
    """The Ray address given cannot be reached, or what answers there is not a Ray GCS."""


class ClusterAuthenticationError(CorrvosError):
    """The Ray cluster refused this process's token (or its lack of one)."""


@dataclass(frozen=True)
class TokenSource:
    """The Ray token this process would send and where it comes from; messages name `origin`, never `token`."""

    origin: str
    token: str | None = field(default=None, repr=False)
    default_file: bool = False  # the token is ~/.ray/auth_token, used because no variable names another


@contextmanager
def ray_cluster(address: str | None = None, num_cpus: int | None = None,
                connect_timeout_s: float | None = None) -> Iterator[None]:
    """Connect for the duration of the block; shut down only what this block started.

    `address=None` starts a local Ray (or joins the one in RAY_ADDRESS, as `ray job submit` sets).
    Joining waits at most `connect_timeout_s` (default $CORRVOS_RAY_CONNECT_TIMEOUT_S, else 20 s) for the GCS.
    """
    if ray.is_initialized():
        yield
        return
    address = address or os.environ.get("RAY_ADDRESS")
    if address and address != "auto":
        check_reachable(address)
        if not address.startswith("ray://"):  # Ray Client (port 10001) bounds its own connection attempts
            source = probe_gcs(address, connect_timeout(connect_timeout_s))
            if source.default_file:
                print(f"corrvos: Ray token from {source.origin}", file=sys.stderr)
    try:
        if address:
            ray.init(address=address, log_to_driver=True, runtime_env=_secret_runtime_env())
        else:
            ray.init(num_cpus=num_cpus, include_dashboard=_dashboard_available())
    except (ConnectionError, TimeoutError, RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ClusterUnreachable(f"cannot reach the Ray cluster at {address!r}: {first}") from None
    try:
        yield
    finally:
        ray.shutdown()


def connect_timeout(value: float | None = None) -> float:
    """Seconds to wait for a GCS to answer: `value`, else $CORRVOS_RAY_CONNECT_TIMEOUT_S, else 20."""
    if value is not None:
        return float(value)
    raw = os.environ.get(CONNECT_TIMEOUT_ENV, "")
    try:
        return float(raw) if raw else DEFAULT_CONNECT_TIMEOUT_S
    except ValueError:
        raise ClusterUnreachable(f"{CONNECT_TIMEOUT_ENV}={raw!r}: expected a number of seconds") from None


def check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Fail fast on an address nothing listens at; `ray.init` would retry for minutes before giving up."""
    host, port = _host_port(address)
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            pass
    except OSError as exc:
        raise ClusterUnreachable(f"cannot reach the Ray cluster at {address!r}: {exc.strerror or exc}") from None


def probe_gcs(address: str, timeout_s: float) -> TokenSource:
    """One GetClusterId call to the GCS at `address` with a deadline; returns the token source it was sent with.

    Raises ClusterUnreachable when nothing answers as a GCS within `timeout_s` (a silent port, the
    dashboard's HTTP port), ClusterAuthenticationError naming the token source when the GCS refuses it.
    """
    import grpc
    from ray.core.generated import gcs_service_pb2, gcs_service_pb2_grpc

    host, port = _host_port(address)
    target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    source = ray_token_source()
    metadata = [("authorization", f"Bearer {source.token}")] if source.token else None
    options = [("grpc.enable_http_proxy", 0)]  # as Ray's own channels: the GCS is reached directly
    if os.environ.get("RAY_USE_TLS", "0").lower() in ("1", "true"):
        from ray._common.tls_utils import load_certs_from_env

        chain, key, ca = load_certs_from_env()
        credentials = grpc.ssl_channel_credentials(certificate_chain=chain, private_key=key, root_certificates=ca)
        channel = grpc.secure_channel(target, credentials, options=options)
    else:
        channel = grpc.insecure_channel(target, options=options)
    with channel:
        stub = gcs_service_pb2_grpc.NodeInfoGcsServiceStub(channel)
        try:
            stub.GetClusterId(gcs_service_pb2.GetClusterIdRequest(), timeout=timeout_s, metadata=metadata)
        except grpc.RpcError as exc:
            raise _probe_error(address, timeout_s, source, exc.code(), exc.details() or "") from None
    return source


def ray_token_source(env: Mapping[str, str] | None = None) -> TokenSource:
    """The token Ray would send to an explicit address, found with Ray's precedence (Ray's C++ token loader).

    Ray sends one only when RAY_AUTH_MODE=token: then RAY_AUTH_TOKEN, else the file RAY_AUTH_TOKEN_PATH,
    else (with RAY_ENABLE_K8S_TOKEN_AUTH) the pod's service-account token, else ~/.ray/auth_token.
    """
    env = os.environ if env is None else env
    mode = env.get("RAY_AUTH_MODE", "")
    if mode.lower() != "token":
        shown = f"RAY_AUTH_MODE={mode}" if mode else "RAY_AUTH_MODE unset"
        return TokenSource(f"{shown}: Ray sends a token only with RAY_AUTH_MODE=token")
    if env.get("RAY_AUTH_TOKEN", "").strip():
        return TokenSource("RAY_AUTH_TOKEN", env["RAY_AUTH_TOKEN"].strip())
    if env.get("RAY_AUTH_TOKEN_PATH"):
        path = env["RAY_AUTH_TOKEN_PATH"]
        token = _first_line(Path(path))
        if not token:  # Ray's loader would abort the process here (a failed RAY_CHECK)
            raise ClusterAuthenticationError(f"RAY_AUTH_TOKEN_PATH={path}: file missing, unreadable or empty")
        return TokenSource(f"RAY_AUTH_TOKEN_PATH={path}", token)
    if env.get("RAY_ENABLE_K8S_TOKEN_AUTH", "").lower() in ("1", "true"):
        for path in K8S_TOKEN_PATHS:
            if token := _first_line(Path(path)):
                return TokenSource(f"the Kubernetes service-account token {path}", token)
    default = Path(env.get("HOME", "~")).expanduser() / ".ray" / "auth_token"
    if token := _first_line(default):
        why = "Ray's default file, read because RAY_AUTH_TOKEN and RAY_AUTH_TOKEN_PATH are unset"
        return TokenSource(f"{default} ({why})", token, default_file=True)
    raise ClusterAuthenticationError(
        f"RAY_AUTH_MODE=token but no Ray token: set RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH, or write {default}")


def _probe_error(address: str, timeout_s: float, source: TokenSource, code: object, details: str) -> CorrvosError:
    """The one-line error for a failed GCS probe, by gRPC status."""
    import grpc

    first = details.strip().splitlines()[0] if details.strip() else str(code)
    if code == grpc.StatusCode.UNAUTHENTICATED:
        if source.token is None:
            what = f"it requires a token and none was sent ({source.origin})"
        else:
            what = f"it refused the token from {source.origin}"
        return ClusterAuthenticationError(
            f"authentication failed at the Ray cluster at {address!r}: {what}; export RAY_AUTH_MODE=token and the "
            "cluster's token in RAY_AUTH_TOKEN or a file named by RAY_AUTH_TOKEN_PATH (docs/cluster.md)")
    hint = ("`--address` wants the Ray GCS port (6379 by default); the dashboard / Job API port (8265) is for "
            "`corrvos submit`")
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return ClusterUnreachable(
            f"{address!r} accepts connections but did not answer as a Ray GCS within {timeout_s:g} s ({hint}; "
            f"{CONNECT_TIMEOUT_ENV} sets the limit)")
    return ClusterUnreachable(f"{address!r} is not a Ray GCS ({first}); {hint}")


def _host_port(address: str) -> tuple[str, int]:
    """(host, port) of `host:port` or `ray://host:port`; one line naming the address otherwise."""
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise ClusterUnreachable(f"Ray address {address!r}: expected host:port or ray://host:port")
    return host.strip("[]"), int(port)


def _first_line(path: Path) -> str:
    """The first line of `path`, stripped ('' when missing or unreadable), as Ray's token loader reads it."""
    try:
        with path.open() as handle:
            return handle.readline().strip()
    except OSError:
        return ""


def _dashboard_available() -> bool:
    """Ray's state API (which Ray Train's placement-group cleaner polls) needs the dashboard (`ray[default]`)."""
    import importlib.util

    return importlib.util.find_spec("aiohttp") is not None and importlib.util.find_spec("ray.dashboard") is not None


def _secret_runtime_env() -> dict | None:
    """The variables this process's config reads its secrets from, for a joined cluster's workers.

    A local Ray started here inherits this process's environment; a joined cluster does not. Inside a
    Ray Job the job's runtime_env already has them (Ray refuses a second value for one name).
    """
    import json

    from components.secrets import secret_env

    env = secret_env()
    job = os.environ.get("RAY_JOB_CONFIG_JSON_ENV_VAR")
    if job:
        given = (json.loads(job).get("runtime_env") or {}).get("env_vars") or {}
        env = {k: v for k, v in env.items() if k not in given}
    return {"env_vars": env} if env else None
