"""Submit corrvos to a Ray cluster as a Ray Job (working directory + dependencies) and follow it to the end.

The job's entrypoint runs on the cluster with the uploaded project as its working directory, so
the config file travels with the upload: one outside the project is staged into it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shlex
import shutil
import sys
import tempfile
import time
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Mapping, Sequence, TextIO

from cluster.connect import check_reachable
from components.errors import CorrvosError

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# gitignore-style, relative to the project root; Ray also honours the project's .gitignore
EXCLUDES = ["/.venv", "/runs", "/data", "/mlruns", "/ray_results", ".git", "__pycache__", "*.pt", "*.pth",
            "*.ckpt", ".pytest_cache"]
STAGED_DIR = "_submitted"  # where a config from outside the project lands in the upload
TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")


class SubmitError(CorrvosError):
    """The job could not be submitted, or it ended without succeeding."""


def api_address(address: str | None) -> str:
    """The Job API URL: `--address`, else $RAY_API_SERVER_ADDRESS; `host:port` gets `http://`."""
    address = address or os.environ.get("RAY_API_SERVER_ADDRESS")
    if not address:
        raise SubmitError("no cluster address: pass --address http://HEAD:8265 (the Ray dashboard / Job API)")
    if "://" not in address:
        address = f"http://{address}"
    if not address.startswith(("http://", "https://")):
        raise SubmitError(f"cluster address {address!r}: expected the Job API URL, http://HEAD:8265")
    return address.rstrip("/")


def job_client(address: str):
    """A `JobSubmissionClient` for `address`; an unreachable or non-Ray address is one line, quickly."""
    from ray.job_submission import JobSubmissionClient

    address = api_address(address)
    check_reachable(address)
    try:
        with _without_env("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS"):  # the SDK would let these override `address`
            return JobSubmissionClient(address)
    except Exception as exc:  # the SDK raises ConnectionError, RuntimeError, AuthenticationError, ...
        raise SubmitError(f"cannot use the Ray Job API at {address!r}: {_first_line(exc)}") from None


def project_dependencies(root: Path = PROJECT_ROOT) -> list[str]:
    """The `[project] dependencies` of the project's pyproject.toml, for a `pip` runtime environment."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        raise SubmitError("--pip reads pyproject.toml with tomllib, which needs Python 3.11+") from None
    path = root / "pyproject.toml"
    try:
        return list(tomllib.loads(path.read_text())["project"]["dependencies"])
    except (OSError, KeyError, ValueError) as exc:
        raise SubmitError(f"cannot read the dependencies from {path}: {_first_line(exc)}") from None


def runtime_env(working_dir: Path, pip: Sequence[str] = (), env_vars: Mapping[str, str] | None = None,
                excludes: Sequence[str] = EXCLUDES) -> dict:
    """The Ray runtime environment: the working directory (with excludes), pip packages, variables."""
    env: dict = {"working_dir": str(working_dir), "excludes": list(excludes)}
    if pip:
        env["pip"] = list(pip)
    if env_vars:
        env["env_vars"] = dict(env_vars)
    return env


def submit_job(address: str, entrypoint: str, working_dir: Path = PROJECT_ROOT, *, pip: Sequence[str] = (),
               env_vars: Mapping[str, str] | None = None, metadata: Mapping[str, str] | None = None) -> str:
    """Submit `entrypoint` (a shell command run in the uploaded `working_dir`); returns the job id."""
    client = job_client(address)
    try:
        with _quiet_ray_logs():
            return client.submit_job(entrypoint=entrypoint, runtime_env=runtime_env(working_dir, pip, env_vars),
                                 metadata=dict(metadata or {}))
    except Exception as exc:
        raise SubmitError(f"the cluster at {api_address(address)} refused the job: {_first_line(exc)}") from None


def pipeline_entrypoint(config: str, overrides: Sequence[str] = ()) -> str:
    """`python -m pipelines.cli run CONFIG --set ...`, quoted for the job's shell."""
    words = ["python", "-m", "pipelines.cli", "run", config, "--no-progress"]  # job logs are not a terminal
    for override in overrides:
        words += ["--set", override]
    return shlex.join(words)


def submit_pipeline(address: str, config: Path, overrides: Sequence[str] = (), *, pip: bool = False,
                    env_vars: Mapping[str, str] | None = None, project_root: Path = PROJECT_ROOT) -> str:
    """Submit `corrvos run CONFIG` with the project as working directory; returns the job id."""
    config = Path(config)
    if not config.is_file():
        raise SubmitError(f"config file {str(config)!r} does not exist")
    packages = project_dependencies(project_root) if pip else ()
    metadata = {"corrvos_config": config.name}
    with upload_dir(config.resolve(), project_root) as (working_dir, config_in_upload):
        return submit_job(address, pipeline_entrypoint(config_in_upload, overrides), working_dir, pip=packages,
                          env_vars=env_vars, metadata=metadata)


def follow_job(address: str, job_id: str, out: TextIO = sys.stdout) -> str:
    """Stream the job's logs to `out` until it ends; returns its final status (SUCCEEDED, FAILED, STOPPED)."""
    client = job_client(address)
    try:
        with _quiet_ray_logs():
            asyncio.run(_copy_logs(client, job_id, out))
    except KeyboardInterrupt:
        print(f"job {job_id} keeps running on the cluster (stop it: ray job stop --address "
              f"{api_address(address)} {job_id})", file=sys.stderr)
        raise
    except Exception:  # the log stream closed early (head restart, proxy timeout): fall back to polling
        pass
    return wait_for_job(client, job_id)


def wait_for_job(client, job_id: str, poll_s: float = 1.0) -> str:
    """Poll until the job reaches a terminal status; returns it."""
    while True:
        try:
            status = str(client.get_job_status(job_id).value)
        except Exception as exc:
            raise SubmitError(f"cannot read the status of job {job_id}: {_first_line(exc)}") from None
        if status in TERMINAL:
            return status
        time.sleep(poll_s)


def job_failure(address: str, job_id: str, status: str) -> SubmitError:
    """One line naming the job, its status and the first line of the cluster's message."""
    try:
        message = job_client(address).get_job_info(job_id).message or ""
    except Exception:
        message = ""
    detail = f": {_first_line(message)}" if message.strip() else ""
    return SubmitError(f"job {job_id} ended {status}{detail}")


async def _copy_logs(client, job_id: str, out: TextIO) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the SDK's own aiohttp `ssl=None` call
        async for chunk in client.tail_job_logs(job_id):
            out.write(chunk)
            out.flush()


@contextmanager
def upload_dir(config: Path, project_root: Path) -> Iterator[tuple[Path, str]]:
    """The directory to upload and the config's path inside it.

    A config inside the project needs nothing; one outside is copied into a staging directory
    that links the project's top-level entries, so the project itself is never modified.
    """
    root = project_root.resolve()
    if config.is_relative_to(root):
        yield root, config.relative_to(root).as_posix()
        return
    staging = Path(tempfile.mkdtemp(prefix="corrvos-submit-"))
    try:
        for entry in root.iterdir():
            if entry.name != STAGED_DIR:
                (staging / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
        (staging / STAGED_DIR).mkdir()
        shutil.copy2(config, staging / STAGED_DIR / config.name)
        yield staging, f"{STAGED_DIR}/{config.name}"
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@contextmanager
def _quiet_ray_logs() -> Iterator[None]:
    """Hide the Ray SDK's INFO/WARNING chatter about packaging and websockets; errors still show."""
    loggers = [logging.getLogger(name) for name in ("ray", "ray.dashboard.modules.dashboard_sdk",
                                                     "ray.dashboard.modules.job.sdk")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


@contextmanager
def _without_env(*names: str) -> Iterator[None]:
    saved = {name: os.environ.pop(name) for name in names if name in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


def _first_line(value: object) -> str:
    text = str(value).strip()
    return text.splitlines()[0][:300] if text else type(value).__name__
