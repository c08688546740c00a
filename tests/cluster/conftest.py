"""A real Ray head on 127.0.0.1 for the submission tests, started through cluster.local and always stopped."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest

from cluster.local import Service, start_ray_head


def child_pids() -> set[int]:
    """Live (non-zombie) direct children of this test process."""
    children = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if int(ppid) == os.getpid() and state not in ("Z", "X"):
            children.add(int(entry.name))
    return children


@pytest.fixture(scope="session")
def ray_head(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """One Ray head (1 CPU) shared by the tests of a session."""
    head = start_ray_head(tmp_path_factory.mktemp("ray-head"), num_cpus=1)
    try:
        yield head
    finally:
        head.stop()
