"""Get a Ray cluster: join one at an address, or start a local one on this machine."""

from __future__ import annotations

import os
import socket
from contextlib import contextmanager
from typing import Iterator

import ray

from components.errors import CorrvosError


class ClusterUnreachable(CorrvosError):
    """The Ray address given cannot be reached."""


@contextmanager
def ray_cluster(address: str | None = None, num_cpus: int | None = None) -> Iterator[None]:
    """Connect for the duration of the block; shut down only what this block started.

    `address=None` starts a local Ray (or joins the one in RAY_ADDRESS, as `ray job submit` sets).
    """
    if ray.is_initialized():
        yield
        return
    address = address or os.environ.get("RAY_ADDRESS")
    if address and address != "auto":
        check_reachable(address)
    try:
        if address:
            ray.init(address=address, log_to_driver=True)
        else:
            ray.init(num_cpus=num_cpus, include_dashboard=_dashboard_available())
    except (ConnectionError, TimeoutError, RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ClusterUnreachable(f"cannot reach the Ray cluster at {address!r}: {first}") from None
    try:
        yield
    finally:
        ray.shutdown()


def check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Fail fast on an address nothing listens at; `ray.init` would retry for minutes before giving up."""
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise ClusterUnreachable(f"Ray address {address!r}: expected host:port or ray://host:port")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            pass
    except OSError as exc:
        raise ClusterUnreachable(f"cannot reach the Ray cluster at {address!r}: {exc.strerror or exc}") from None


def _dashboard_available() -> bool:
    """Ray's state API (which Ray Train's placement-group cleaner polls) needs the dashboard (`ray[default]`)."""
    import importlib.util

    return importlib.util.find_spec("aiohttp") is not None and importlib.util.find_spec("ray.dashboard") is not None
