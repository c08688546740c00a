"""Joining a Ray cluster: an unreachable address, a port that is not a Ray GCS and a refused token are each a quick
one-line error, not minutes of retries or a wait without limit."""

import http.server
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest
import ray

from cluster.connect import (ClusterAuthenticationError, ClusterUnreachable, check_reachable, probe_gcs, ray_cluster,
                             ray_token_source)
from cluster.processes import free_port, spawn, stop_group, wait_until
from tests.silent_server import silent_port as silent_loopback_port


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


def test_run_command_reports_an_unreachable_cluster_in_one_line(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(f"model: {{preset: small}}\nstorage: {{root: {tmp_path / 'runs'}}}\n"
                      f"tracking: {{mlflow_uri: 'sqlite:///{tmp_path / 'mlflow.db'}'}}\n")
    corrvos = str(Path(sys.executable).parent / "corrvos")
    result = subprocess.run([corrvos, "run", str(config), "--address", f"127.0.0.1:{_free_port()}"],
                            capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "cannot reach the Ray cluster" in lines[0]
    assert not (tmp_path / "runs").exists()


# --- a port that is not a Ray GCS, and token authentication (issue 19, items 3 and 8) ---------------------------

TOKEN = "corrvos-test-token-7f3a9c"


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port that accepts TCP connections and never sends a byte."""
    with silent_loopback_port() as port:
        yield port


@pytest.fixture
def http_port() -> Iterator[int]:
    """A loopback HTTP/1.1 server, as the dashboard / Job API port is."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def no_ray_token(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No Ray auth variables and an empty HOME (so no leftover ~/.ray/auth_token); returns that HOME."""
    for name in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_ENABLE_K8S_TOKEN_AUTH", "RAY_ADDRESS"):
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    return home


@pytest.mark.timeout(60)  # without the probe, ray.init waits on such a port without limit
def test_a_silent_port_is_not_a_gcs_within_the_limit(silent_port, no_ray_token, monkeypatch):
    monkeypatch.setenv("CORRVOS_RAY_CONNECT_TIMEOUT_S", "1")
    start = time.time()
    with pytest.raises(ClusterUnreachable, match=rf"'127.0.0.1:{silent_port}' .*not answer as a Ray GCS within 1 s"):
        with ray_cluster(f"127.0.0.1:{silent_port}"):
            pass
    assert time.time() - start < 10


@pytest.mark.timeout(60)
def test_an_http_port_is_named_as_not_a_gcs(http_port, no_ray_token):
    start = time.time()
    with pytest.raises(ClusterUnreachable, match=rf"'127.0.0.1:{http_port}' is not a Ray GCS .*6379.*8265") as caught:
        with ray_cluster(f"127.0.0.1:{http_port}", connect_timeout_s=10):
            pass
    assert "\n" not in str(caught.value) and time.time() - start < 5


def test_token_mode_without_any_token_names_every_source(no_ray_token, monkeypatch):
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    with pytest.raises(ClusterAuthenticationError, match=r"RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH.*\.ray/auth_token"):
        ray_token_source()
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(no_ray_token / "missing"))  # Ray's own loader aborts the process here
    with pytest.raises(ClusterAuthenticationError, match=r"RAY_AUTH_TOKEN_PATH=.*missing: file missing"):
        ray_token_source()


@pytest.fixture(scope="module")
def token_gcs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Ray's own GCS server alone (no raylet, no dashboard; starts in about a second) with token auth on."""
    gcs_server = Path(ray.__file__).parent / "core" / "src" / "ray" / "gcs" / "gcs_server"
    state = tmp_path_factory.mktemp("gcs")
    port = free_port()
    command = [str(gcs_server), f"--log_dir={state / 'logs'}", "--config_list=", f"--gcs_server_port={port}",
               "--metrics-agent-port=-1", "--node-ip-address=127.0.0.1", "--session-name=corrvos-test",
               f"--session-dir={state}", f"--node-id={os.urandom(28).hex()}"]
    process = spawn("gcs_server", command, state / "gcs.log", env={"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": TOKEN})
    try:
        wait_until("gcs_server", lambda: _listening(port), process, state / "gcs.log", timeout_s=60)
        yield f"127.0.0.1:{port}"
    finally:
        stop_group(process.pid, "gcs_server")


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


@pytest.mark.ray
@pytest.mark.server
def test_a_token_cluster_without_a_token_is_an_authentication_error(token_gcs, no_ray_token):
    start = time.time()
    with pytest.raises(ClusterAuthenticationError, match=r"authentication failed.*none was sent \(RAY_AUTH_MODE unset"):
        with ray_cluster(token_gcs):
            pass
    assert time.time() - start < 10  # ray.init says "cannot reach" after ~20 s of retries


@pytest.mark.ray
@pytest.mark.server
@pytest.mark.parametrize("source", ["RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "default file"])
def test_a_refused_token_names_its_source_and_never_the_token(token_gcs, no_ray_token, monkeypatch, source):
    wrong = "wrong-token-5e1d"
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    if source == "RAY_AUTH_TOKEN":
        monkeypatch.setenv("RAY_AUTH_TOKEN", wrong)
        named = "RAY_AUTH_TOKEN"
    elif source == "RAY_AUTH_TOKEN_PATH":
        path = no_ray_token / "token.txt"
        path.write_text(wrong + "\n")
        monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(path))
        named = f"RAY_AUTH_TOKEN_PATH={path}"
    else:  # a leftover ~/.ray/auth_token, which Ray reads without saying so
        (no_ray_token / ".ray").mkdir()
        (no_ray_token / ".ray" / "auth_token").write_text(wrong)
        named = f"{no_ray_token / '.ray' / 'auth_token'} (Ray's default file"
    with pytest.raises(ClusterAuthenticationError, match="authentication failed") as caught:
        with ray_cluster(token_gcs):
            pass
    message = str(caught.value)
    assert f"refused the token from {named}" in message and wrong not in message and "\n" not in message


@pytest.mark.ray
@pytest.mark.server
def test_the_right_token_passes_the_probe_and_its_source_is_known(token_gcs, no_ray_token, monkeypatch):
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    (no_ray_token / ".ray").mkdir()
    (no_ray_token / ".ray" / "auth_token").write_text(TOKEN + "\n")
    source = probe_gcs(token_gcs, 5)
    assert source.default_file and str(no_ray_token / ".ray" / "auth_token") in source.origin
    assert TOKEN not in repr(source)
    monkeypatch.setenv("RAY_AUTH_TOKEN", TOKEN)
    assert probe_gcs(token_gcs, 5).origin == "RAY_AUTH_TOKEN"
