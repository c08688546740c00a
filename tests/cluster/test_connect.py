"""Joining a Ray cluster: an unreachable address is a quick one-line error, not minutes of retries."""

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cluster.connect import ClusterUnreachable, check_reachable


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_address_fails_fast():
    port = _free_port()  # bound then released: nothing listens there
    start = time.time()
    with pytest.raises(ClusterUnreachable, match=f"127.0.0.1:{port}"):
        check_reachable(f"ray://127.0.0.1:{port}")
    assert time.time() - start < 10


def test_malformed_address_is_named():
    with pytest.raises(ClusterUnreachable, match="host:port"):
        check_reachable("not-an-address")


def test_listening_address_passes():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        check_reachable(f"127.0.0.1:{server.getsockname()[1]}")


def test_train_command_reports_an_unreachable_cluster_in_one_line(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("model: {preset: small}\n")
    corrvos = str(Path(sys.executable).parent / "corrvos")
    result = subprocess.run([corrvos, "train", str(config), "--stage", "train", "--data", str(tmp_path),
                             "--out", str(tmp_path / "out"), "--address", f"127.0.0.1:{_free_port()}"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "cannot reach the Ray cluster" in lines[0]
    assert not (tmp_path / "out").exists()
