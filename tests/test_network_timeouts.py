"""S3 storage with bounded timeouts: a silent, refusing or credential-less endpoint is one line naming it, in
seconds (issue 19, items 3 and 10); `corrvos run` checks the storage root before starting Ray."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

import components.storage as storage
from components.storage import StorageError, check_storage_root, fs_options, open_fs, read_bytes
from tests.silent_server import silent_port


@pytest.fixture
def silent_endpoint() -> Iterator[str]:
    """An HTTP endpoint on loopback that accepts connections and never sends a byte."""
    with silent_port() as port:
        yield f"http://127.0.0.1:{port}"


@pytest.fixture
def refused_endpoint() -> str:
    """An endpoint on loopback where nothing listens."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


@pytest.fixture
def short_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    """corrvos's S3 defaults at one second and one attempt, so a silent endpoint costs the test ~1 s."""
    monkeypatch.setattr(storage, "S3_CONFIG_DEFAULTS",
                        {"connect_timeout": 1, "read_timeout": 1, "retries": {"total_max_attempts": 1}})
    monkeypatch.setattr(storage, "S3_RETRIES_DEFAULT", 1)


@pytest.fixture
def no_aws_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No AWS credentials anywhere botocore looks (variables, files, instance metadata)."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                 "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                 "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


KEYS = {"key": "testing", "secret": "testing"}


def test_s3_options_get_bounded_defaults_that_the_users_override():
    config = fs_options("s3://bucket/runs")["config_kwargs"]
    attempts = config["retries"]["total_max_attempts"] * storage.S3_RETRIES_DEFAULT
    assert attempts * (config["connect_timeout"] + config["read_timeout"]) <= 60  # s3fs's own: 5 x 5 x (5 + 15) s
    mine = fs_options("s3://bucket/runs", {"config_kwargs": {"read_timeout": 120}, "retries": 4, **KEYS})
    assert mine["config_kwargs"]["read_timeout"] == 120
    assert mine["config_kwargs"]["connect_timeout"] == config["connect_timeout"]
    assert "retries" not in mine and mine["key"] == "testing"  # s3fs takes no `retries` argument: open_fs sets it
    assert open_fs("s3://bucket/runs", {"retries": 4, **KEYS})[0].retries == 4
    assert open_fs("s3://bucket/runs", KEYS)[0].retries == storage.S3_RETRIES_DEFAULT
    assert fs_options("/data/runs", {"auto_mkdir": True}) == {"auto_mkdir": True}  # local paths: untouched


@pytest.mark.timeout(60)  # s3fs's own limits wait ~7 minutes on such an endpoint
def test_a_silent_endpoint_fails_in_seconds_naming_it(silent_endpoint, short_limits):
    start = time.time()
    with pytest.raises(StorageError) as caught:
        read_bytes("s3://corrvos-test/runs/summary.json", {"endpoint_url": silent_endpoint, **KEYS})
    message = str(caught.value)
    assert message.startswith("s3://corrvos-test/runs/summary.json: ")
    assert f"S3 endpoint {silent_endpoint} did not answer" in message
    assert "\n" not in message and time.time() - start < 10


def test_a_refusing_endpoint_is_one_line(refused_endpoint):
    expected = rf"^s3://corrvos-test/runs: cannot connect to S3 endpoint {refused_endpoint} "
    with pytest.raises(StorageError, match=expected):
        check_storage_root("s3://corrvos-test/runs", {"endpoint_url": refused_endpoint, **KEYS})


def test_missing_credentials_are_one_line(silent_endpoint, no_aws_credentials):
    expected = r"^s3://corrvos-test/runs: no S3 credentials for S3 endpoint .*AWS_ACCESS_KEY_ID"
    with pytest.raises(StorageError, match=expected):
        check_storage_root("s3://corrvos-test/runs", {"endpoint_url": silent_endpoint})


def test_local_storage_roots_need_no_check(tmp_path):
    check_storage_root(str(tmp_path / "not-yet"), {})
    assert not (tmp_path / "not-yet").exists()


@pytest.mark.timeout(120)
def test_run_checks_the_storage_root_before_starting_ray(silent_endpoint, tmp_path):
    config = tmp_path / "c.yaml"
    options = (f"{{endpoint_url: '{silent_endpoint}', key: testing, secret: testing, "
               "config_kwargs: {read_timeout: 1}}")
    config.write_text(f"model: {{preset: small}}\nstorage: {{root: 's3://corrvos-test/runs', options: {options}}}\n"
                      f"tracking: {{mlflow_uri: 'sqlite:///{tmp_path / 'mlflow.db'}'}}\n")
    corrvos = str(Path(sys.executable).parent / "corrvos")
    result = subprocess.run([corrvos, "run", str(config), "--no-progress"], capture_output=True, text=True, timeout=90,
                            cwd=tmp_path)
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr[-3000:]  # nothing from a Ray start-up, no traceback
    assert lines[0].startswith("corrvos run: error: s3://corrvos-test/runs: ") and silent_endpoint in lines[0]
