"""Submit corrvos to a Ray cluster as a Ray Job (working directory + dependencies) and follow it to the end.

The job's entrypoint runs on the cluster with the uploaded project as its working directory, so
the config file travels with the upload: one outside the project is staged into it.

Secrets never go into the entrypoint, the job's metadata or an uploaded file (`prepare_submission`):
every literal in `storage.options` (config file or `--set`) becomes a reference `${env:CORRVOS_SECRET_<n>}`
and the tracking URI loses its `user:password@`; the values travel only as the job's runtime_env
`env_vars` (MLflow's own MLFLOW_TRACKING_USERNAME / _PASSWORD for the tracking server), which the
job-side `corrvos run` reads back. A config file holding secrets is uploaded as a rewritten copy in
its place. What `submit` prints of the job (its log, its failure) has those values hidden.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shlex
import shutil
import sys
import tempfile
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence, TextIO

import yaml

from cluster.connect import check_reachable
from components.config import apply_overrides
from components.errors import ConfigError, CorrvosError
from components.secrets import (CREDENTIAL_URIS, GENERATED_PREFIX, SECRET_KEYS, SecretEnv, externalize, redact,
                                redact_uri, references_in, split_credentials)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# gitignore-style, relative to the project root; Ray also honours the project's .gitignore
EXCLUDES = ["/.venv", "/runs", "/data", "/mlruns", "/ray_results", ".git", "__pycache__", "*.pt", "*.pth",
            "*.ckpt", ".pytest_cache"]
STAGED_DIR = "_submitted"  # where a config from outside the project lands in the upload
TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")
SECRET_ENV_METADATA = "corrvos_secret_env"  # job metadata: the NAMES of the variables holding secrets
MLFLOW_TOKEN = "MLFLOW_TRACKING_TOKEN"


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
        raise SubmitError(f"cannot use the Ray Job API at {redact_uri(address)!r}: {_first_line(exc)}") from None


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
        reason = redact(_first_line(exc), (env_vars or {}).values())  # a refusal may quote the runtime_env
        raise SubmitError(f"the cluster at {redact_uri(api_address(address))} refused the job: {reason}") from None


def pipeline_entrypoint(config: str, overrides: Sequence[str] = ()) -> str:
    """`python -m pipelines.cli run CONFIG --set ...`, quoted for the job's shell."""
    words = ["python", "-m", "pipelines.cli", "run", config, "--no-progress"]  # job logs are not a terminal
    for override in overrides:
        words += ["--set", override]
    return shlex.join(words)


@dataclass(frozen=True)
class Submission:
    """A config and its overrides with every secret moved into the job's environment variables."""

    overrides: tuple[str, ...]  # as given, except those that held a secret, rewritten with references
    env_vars: dict[str, str] = field(repr=False)  # the job's variables: --env, the secrets, forwarded ones
    secret_names: tuple[str, ...] = ()  # which of env_vars hold secrets (their values are never printed)
    config_text: str | None = field(default=None, repr=False)  # the config to upload instead of the file, or None

    @property
    def secret_values(self) -> list[str]:
        """The values of `secret_names`: what nothing printed may show."""
        return [self.env_vars[name] for name in self.secret_names]


def prepare_submission(config: Path, overrides: Sequence[str] = (), env_vars: Mapping[str, str] | None = None,
                       environ: Mapping[str, str] | None = None) -> Submission:
    """Move the secrets of `config` and `overrides` into environment variables for the job.

    Literal `storage.options` values become `${env:CORRVOS_SECRET_<n>}` (one variable per distinct value);
    the tracking URI's credentials become MLflow's variables; a variable the config refers to
    (`${env:NAME}`) and MLflow's credential variables are forwarded from `environ` (this process's
    environment) when set here. `env_vars` (`--env`) win over all of them.
    """
    env_vars = dict(env_vars or {})
    environ = os.environ if environ is None else environ
    data = _read_config(config)
    secrets = SecretEnv(taken=env_vars)
    clean = externalize(data, secrets)
    clean_overrides = tuple(_externalize_override(item, secrets) for item in overrides)
    merged = apply_overrides(data, list(overrides))
    variables = dict(secrets.variables)
    for name in CREDENTIAL_URIS["tracking.mlflow_uri"]:
        variables.pop(name, None)  # only the credentials of the URI the job ends up with (below)
    forwarded = [name for key in SECRET_KEYS for name in references_in(_get(merged, key))]
    uri = _get(merged, "tracking.mlflow_uri")
    if isinstance(uri, str) and uri.startswith(("http://", "https://")):
        _, user, password = split_credentials(uri)
        for name, value in zip(CREDENTIAL_URIS["tracking.mlflow_uri"], (user, password)):
            if value is not None:
                variables[name] = value
            else:
                forwarded.append(name)
        forwarded.append(MLFLOW_TOKEN)
    for name in forwarded:
        if name in environ and name not in variables:
            variables[name] = environ[name]
    secret_names = tuple(name for name in variables if name not in env_vars and name != "MLFLOW_TRACKING_USERNAME")
    return Submission(clean_overrides, {**variables, **env_vars}, secret_names,
                      yaml.safe_dump(clean, sort_keys=False) if clean != data else None)


def submit_pipeline(address: str, config: Path, overrides: Sequence[str] = (), *, pip: bool = False,
                    env_vars: Mapping[str, str] | None = None, project_root: Path = PROJECT_ROOT) -> str:
    """Submit `corrvos run CONFIG` with the project as working directory; returns the job id.

    Secrets go only into the job's environment (`prepare_submission`).
    """
    config = Path(config)
    if not config.is_file():
        raise SubmitError(f"config file {str(config)!r} does not exist")
    submission = prepare_submission(config, overrides, env_vars)
    packages = project_dependencies(project_root) if pip else ()
    metadata = {"corrvos_config": config.name}
    if submission.secret_names:
        metadata[SECRET_ENV_METADATA] = " ".join(submission.secret_names)
    with upload_dir(config.resolve(), project_root, submission.config_text) as (working_dir, config_in_upload):
        return submit_job(address, pipeline_entrypoint(config_in_upload, submission.overrides), working_dir,
                          pip=packages, env_vars=submission.env_vars, metadata=metadata)


def follow_job(address: str, job_id: str, out: TextIO = sys.stdout) -> str:
    """Stream the job's logs to `out` until it ends (its secrets hidden); returns its final status."""
    client = job_client(address)
    hidden = job_secrets(client, job_id)
    try:
        with _quiet_ray_logs():
            asyncio.run(_copy_logs(client, job_id, out, hidden))
    except KeyboardInterrupt:
        print(f"job {job_id} keeps running on the cluster (stop it: ray job stop --address "
              f"{redact_uri(api_address(address))} {job_id})", file=sys.stderr)
        raise
    except Exception:  # the log stream closed early (head restart, proxy timeout): fall back to polling
        pass
    return wait_for_job(client, job_id)


def job_secrets(client, job_id: str) -> list[str]:
    """The secret values a job was given: its env_vars named by its metadata, or generated / MLflow password ones."""
    try:
        info = client.get_job_info(job_id)
    except Exception:
        return []
    variables = (info.runtime_env or {}).get("env_vars") or {}
    named = set((info.metadata or {}).get(SECRET_ENV_METADATA, "").split())
    return [value for name, value in variables.items()
            if name in named or name.startswith(GENERATED_PREFIX) or name in ("MLFLOW_TRACKING_PASSWORD", MLFLOW_TOKEN)]


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
    """One line naming the job, its status and the first line of the cluster's message (secrets hidden)."""
    try:
        client = job_client(address)
        message = redact(client.get_job_info(job_id).message or "", job_secrets(client, job_id))
    except Exception:
        message = ""
    detail = f": {_first_line(message)}" if message.strip() else ""
    return SubmitError(f"job {job_id} ended {status}{detail}")


async def _copy_logs(client, job_id: str, out: TextIO, hidden: Iterable[str] = ()) -> None:
    """Copy the job's log to `out` line by line (a secret split across chunks is still hidden)."""
    hidden = list(hidden)
    pending = ""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the SDK's own aiohttp `ssl=None` call
        async for chunk in client.tail_job_logs(job_id):
            lines, newline, pending = (pending + chunk).rpartition("\n")
            if newline:
                out.write(redact(lines + newline, hidden))
                out.flush()
    if pending:
        out.write(redact(pending, hidden))
        out.flush()


@contextmanager
def upload_dir(config: Path, project_root: Path, config_text: str | None = None) -> Iterator[tuple[Path, str]]:
    """The directory to upload and the config's path inside it.

    A config inside the project needs nothing; one outside is copied into a staging directory that
    links the project's entries, so the project itself is never modified. With `config_text` (the
    config with its secrets moved out) the file is never uploaded: the staging directory holds that
    text in its place instead.
    """
    root = project_root.resolve()
    inside = config.is_relative_to(root)
    if inside and config_text is None:
        yield root, config.relative_to(root).as_posix()
        return
    staging = Path(tempfile.mkdtemp(prefix="corrvos-submit-"))
    try:
        relative = config.relative_to(root) if inside else Path(STAGED_DIR, config.name)
        _link_all_but(root, staging, relative.parts)
        if config_text is None:
            shutil.copy2(config, staging / relative)
        else:
            (staging / relative).write_text(config_text)
        yield staging, relative.as_posix()
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _link_all_but(source: Path, target: Path, path: tuple[str, ...]) -> None:
    """Link each entry of `source` into `target` except `path[0]`, a real directory mirrored the same way down `path`."""
    target.mkdir(exist_ok=True)
    if source.is_dir():
        for entry in source.iterdir():
            if entry.name != path[0]:
                (target / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
    if len(path) > 1:
        _link_all_but(source / path[0], target / path[0], path[1:])


def _read_config(path: Path) -> dict[str, Any]:
    """The config file's YAML as a mapping; one line naming the file otherwise."""
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    except OSError as exc:
        raise SubmitError(f"cannot read config file {str(path)!r}: {exc.strerror or exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of config sections")
    return data


def _externalize_override(item: str, secrets: SecretEnv) -> str:
    """`KEY=VALUE` with any secret in VALUE moved into `secrets`; an override without one comes back as given."""
    dotted, sep, _ = item.partition("=")
    if not sep:
        return item  # apply_overrides names the malformed one
    tiny = apply_overrides({}, [item])
    clean = externalize(tiny, secrets)
    if clean == tiny:
        return item
    keys = dotted.strip()
    return f"{keys}={json.dumps(_get(clean, keys), ensure_ascii=False, default=str)}"


def _get(data: Mapping[str, Any], dotted: str) -> Any:
    """The value at a dotted key of nested config data, or None."""
    node: Any = data
    for key in dotted.split("."):
        if not isinstance(node, Mapping):
            return None
        node = node.get(key)
    return node


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
