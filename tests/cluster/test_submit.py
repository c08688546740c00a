"""`corrvos submit` against a real Ray head on 127.0.0.1: logs followed, exit status, --no-wait, bad input."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cluster.local import Service
from cluster.processes import free_port
from cluster.submit import (EXCLUDES, PROJECT_ROOT, job_client, pipeline_entrypoint, project_dependencies,
                            submit_job, follow_job, upload_dir, wait_for_job)

CORRVOS = str(Path(sys.executable).parent / "corrvos")


def corrvos(*args: str, env: dict[str, str] | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([CORRVOS, *args], capture_output=True, text=True, timeout=timeout, env=env)


def error_lines(result: subprocess.CompletedProcess) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


def test_submitted_job_succeeds_and_its_logs_are_followed(ray_head: Service):
    # a stray RAY_ADDRESS (as the local cluster's env file sets) must not override --address
    env = {**os.environ, "RAY_ADDRESS": f"127.0.0.1:{free_port()}"}
    result = corrvos("submit", "--address", ray_head.dashboard_url, "--env", "CORRVOS_PROBE=forty two",
                     "--entrypoint", "python -m pipelines.cli version && echo probe=$CORRVOS_PROBE", env=env)
    assert result.returncode == 0, result.stderr
    assert "corrvos 0.1.0" in result.stdout  # the job imported every command, components.data included
    assert "probe=forty two" in result.stdout
    assert "SUCCEEDED" in result.stdout.splitlines()[-1]


def test_a_failed_job_is_one_line_naming_it_and_exit_1(ray_head: Service):
    result = corrvos("submit", "--address", ray_head.dashboard_url, "--entrypoint",
                     "python -c 'import sys; print(\"about to fail\"); sys.exit(3)'")
    assert result.returncode == 1
    assert "about to fail" in result.stdout
    lines = error_lines(result)
    assert len(lines) == 1 and "FAILED" in lines[0] and "raysubmit_" in lines[0], result.stderr


def test_no_wait_prints_the_job_id_and_returns(ray_head: Service):
    result = corrvos("submit", "--address", ray_head.dashboard_url.removeprefix("http://"), "--no-wait",
                     "--entrypoint", "echo quick")
    assert result.returncode == 0, result.stderr
    job_id = result.stdout.strip()
    assert job_id.startswith("raysubmit_") and "\n" not in job_id
    assert wait_for_job(job_client(ray_head.dashboard_url), job_id) == "SUCCEEDED"


def test_a_config_outside_the_project_travels_with_the_upload(ray_head: Service, tmp_path: Path):
    config = tmp_path / "my config.yaml"
    config.write_text("model: {preset: small}\n")
    with upload_dir(config, PROJECT_ROOT) as (working_dir, inside):
        assert working_dir != PROJECT_ROOT and (working_dir / inside).read_text() == config.read_text()
        job_id = submit_job(ray_head.dashboard_url, f"cat {shlex.quote(inside)} && test -f pipelines/cli.py",
                            working_dir)
    assert not working_dir.exists()  # the staging directory is gone, the project untouched
    assert follow_job(ray_head.dashboard_url, job_id, out=open("/dev/null", "w")) == "SUCCEEDED"
    logs = job_client(ray_head.dashboard_url).get_job_logs(job_id)
    assert "preset: small" in logs


def test_unreachable_address_is_one_line_and_exit_1(tmp_path: Path):
    config = tmp_path / "c.yaml"
    config.write_text("model: {preset: small}\n")
    start = time.monotonic()
    result = corrvos("submit", str(config), "--address", f"http://127.0.0.1:{free_port()}", timeout=60)
    assert result.returncode == 1 and time.monotonic() - start < 20
    lines = error_lines(result)
    assert len(lines) == 1 and lines[0].startswith("corrvos submit: error:") and "cannot reach" in lines[0]


@pytest.mark.parametrize("args, message", [
    (["--address", "http://127.0.0.1:1", "--entrypoint", "true", "--env", "NOEQUALS"], "KEY=VALUE"),
    (["--address", "http://127.0.0.1:1"], "CONFIG"),
    (["missing.yaml", "--address", "http://127.0.0.1:1"], "does not exist"),
    (["c.yaml", "--address", "ftp://somewhere:21"], "http://HEAD:8265"),
])
def test_bad_input_is_one_line(args: list[str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "c.yaml").write_text("model: {preset: small}\n")
    monkeypatch.chdir(tmp_path)
    result = corrvos("submit", *args, timeout=60)
    lines = error_lines(result)
    assert result.returncode == 1 and len(lines) == 1 and message in lines[0], result.stderr


def test_pipeline_entrypoint_quotes_overrides():
    entrypoint = pipeline_entrypoint("_submitted/my config.yaml", ["pipeline.name=a b", "train.steps=3"])
    assert shlex.split(entrypoint) == ["python", "-m", "pipelines.cli", "run", "_submitted/my config.yaml", "--no-progress",
                                       "--set", "pipeline.name=a b", "--set", "train.steps=3"]


def test_excludes_are_anchored_and_dependencies_come_from_pyproject():
    assert "/data" in EXCLUDES and "data" not in EXCLUDES  # "data" would drop components/data
    dependencies = project_dependencies()
    assert any(d.startswith("ray") for d in dependencies) and any(d.startswith("mlflow") for d in dependencies)
