"""Get a Ray cluster: join one at an address, or start a local one on this machine."""

from __future__ import annotations

import os
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
    try:
        if address:
            ray.init(address=address, log_to_driver=True)
        else:
            ray.init(num_cpus=num_cpus, include_dashboard=False)
    except (ConnectionError, TimeoutError, RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ClusterUnreachable(f"cannot reach the Ray cluster at {address!r}: {first}") from None
    try:
        yield
    finally:
        ray.shutdown()
