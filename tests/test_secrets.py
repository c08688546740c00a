"""Secrets: `${env:NAME}` references, credentials out of the tracking URI, redaction, and what `submit` sends.

Planted strings stand for credentials; no document, payload, entrypoint or message may hold them.
"""

from __future__ import annotations

import base64
import http.server
import os
import shlex
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Iterator

import pytest
import yaml

from cluster.submit import pipeline_entrypoint, prepare_submission, upload_dir
from components import secrets
from components.config import CorrvosConfig, config_from_dict, config_to_dict, load_yaml_config
from components.errors import ConfigError, CorrvosError
from components.training.state import TrainingState, capture_rng
from pipelines.dag.engine import _public_yaml, resolve_locations
from pipelines.tracking import MLFLOW_REQUEST_DEFAULTS, check_tracking_reachable, flatten_config, resolve_tracking_uri
from pipelines.training.tracked import stage_params

# made at run time: the project's own sources (this file among them) travel with every upload
RUN = uuid.uuid4().hex[:8]
KEY, SECRET, PASSWORD, FILE_SECRET = (f"AKIAPLANTED{RUN}", f"s3cr3t-PLANTED-{RUN}", f"mlflowPASSplanted{RUN}",
                                      f"fileSECRETplanted{RUN}")
PLANTED = (KEY, SECRET, PASSWORD, FILE_SECRET)
MLFLOW_VARIABLES = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN",
                    *MLFLOW_REQUEST_DEFAULTS)


@pytest.fixture(autouse=True)
def environment() -> Iterator[None]:
    """Loading a config sets MLflow's variables in this process: put the environment back afterwards."""
    saved = dict(os.environ)
    for name in MLFLOW_VARIABLES:
        os.environ.pop(name, None)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def assert_hidden(text: str | bytes, what: str) -> None:
    text = text.decode("latin-1") if isinstance(text, bytes) else text
    found = [s for s in PLANTED if s in text]
    assert not found, f"{what} holds {found}"


def write_config(folder: Path, options: dict, uri: str) -> Path:
    path = folder / "c.yaml"
    path.write_text(yaml.safe_dump({"storage": {"root": str(folder / "runs"), "options": options},
                                    "tracking": {"mlflow_uri": uri}}))
    return path


def test_a_reference_is_resolved_where_the_config_is_built_and_shown_as_itself(tmp_path, monkeypatch):
    monkeypatch.setenv("PLANTED_KEY", KEY)
    config = load_yaml_config(CorrvosConfig, write_config(tmp_path, {"key": "${env:PLANTED_KEY}",
                                                                      "client_kwargs": {"region": "${env:PLANTED_KEY}"}},
                                                          "sqlite:///x.db"))
    assert config.storage.options == {"key": KEY, "client_kwargs": {"region": KEY}}  # what fsspec gets
    payload = config_to_dict(config)  # what Ray tasks and Train workers get
    assert payload["storage"]["options"] == {"key": "${env:PLANTED_KEY}", "client_kwargs": {"region": "${env:PLANTED_KEY}"}}
    assert config_from_dict(CorrvosConfig, payload) == config  # a worker resolves it again from its own env
    assert secrets.secret_env()["PLANTED_KEY"] == KEY  # what a joined cluster's workers must be given


def test_an_unset_reference_names_the_key_and_variable(tmp_path, monkeypatch):
    monkeypatch.delenv("PLANTED_NOWHERE", raising=False)
    with pytest.raises(ConfigError, match=r"storage\.options\.secret: environment variable PLANTED_NOWHERE is not set"):
        load_yaml_config(CorrvosConfig, write_config(tmp_path, {"secret": "${env:PLANTED_NOWHERE}"}, "sqlite:///x.db"))


def test_errors_about_secret_keys_never_show_the_value(tmp_path):
    path = write_config(tmp_path, {}, "sqlite:///x.db")
    with pytest.raises(ConfigError) as bad_type:
        load_yaml_config(CorrvosConfig, path, [f"storage.options={SECRET}"])
    with pytest.raises(ConfigError) as no_equals:
        load_yaml_config(CorrvosConfig, path, [f"storage.options.secret:{SECRET}"])
    assert "storage.options" in str(bad_type.value) and "storage.options.secret" in str(no_equals.value)
    assert_hidden(str(bad_type.value) + str(no_equals.value), "the errors")


def test_the_tracking_uri_loses_its_credentials_at_load(tmp_path):
    encoded = PASSWORD.replace("P", "%50", 1)  # percent-encoded, as a URI may hold it
    config = load_yaml_config(CorrvosConfig, write_config(tmp_path, {}, f"http://planted-user:{encoded}@mlflow.example:5000/"))
    assert config.tracking.mlflow_uri == "http://mlflow.example:5000/"
    assert os.environ["MLFLOW_TRACKING_USERNAME"] == "planted-user"  # percent-decoded, where MLflow reads it
    assert os.environ["MLFLOW_TRACKING_PASSWORD"] == PASSWORD
    assert resolve_tracking_uri("http://u:other@h:1") == "http://h:1" and os.environ["MLFLOW_TRACKING_PASSWORD"] == "other"


def test_mlflow_requests_get_bounded_defaults_unless_the_user_set_them(monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "5")
    resolve_tracking_uri("http://h:1")
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == MLFLOW_REQUEST_DEFAULTS["MLFLOW_HTTP_REQUEST_TIMEOUT"]
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "5"
    assert int(MLFLOW_REQUEST_DEFAULTS["MLFLOW_HTTP_REQUEST_TIMEOUT"]) * (
        1 + int(MLFLOW_REQUEST_DEFAULTS["MLFLOW_HTTP_REQUEST_MAX_RETRIES"])) < 60  # a dead server: under a minute


@pytest.mark.parametrize("uri, shown", [
    ("http://user:PASS@host:5000/x", "http://user:***@host:5000/x"),
    ("https://TOKEN@host", "https://***@host"),
    ("s3://bucket/key?X-Amz-Signature=abc&versionId=3", "s3://bucket/key?X-Amz-Signature=***&versionId=3"),
    ("sqlite:////tmp/mlflow.db", "sqlite:////tmp/mlflow.db"),
    ("http://user:PASS@host:notaport", "http://***@host:notaport"),
    ("runs/local", "runs/local"),
])
def test_redact_uri(uri, shown):
    assert secrets.redact_uri(uri) == shown


def test_redact_hides_every_occurrence_but_not_short_values_or_plain_endpoints():
    text = f"a {SECRET} b {SECRET}{KEY} at http://s3.example:9000"
    assert secrets.redact(text, [SECRET, KEY, "ab", "http://s3.example:9000"]) == "a *** b ****** at http://s3.example:9000"
    assert secrets.redact("at http://u:p@h", ["http://u:p@h"]) == "at ***"


def test_documents_of_a_local_run_hold_no_secret(tmp_path, monkeypatch):
    monkeypatch.setenv("PLANTED_KEY", KEY)
    config = load_yaml_config(CorrvosConfig, write_config(
        tmp_path, {"key": "${env:PLANTED_KEY}", "secret": SECRET, "token": [FILE_SECRET]},
        f"http://planted-user:{PASSWORD}@127.0.0.1:5000"))
    config = resolve_locations(config)  # what run_pipeline hands on
    public = secrets.public_config(config_to_dict(config))
    assert public["storage"]["options"] == {"key": "${env:PLANTED_KEY}", "secret": "***", "token": ["***"]}
    assert_hidden(_public_yaml(config), "the parent run's resolved.yaml")
    assert_hidden(yaml.safe_dump(public), "a stage run's resolved.yaml")
    assert_hidden(repr(stage_params(public, "train")) + repr(flatten_config(config_to_dict(config))), "MLflow params")
    state = TrainingState(step=1, model={}, optimizer={}, rng=capture_rng(), config=config_to_dict(config),
                          dataset_version="v")
    assert_hidden(state.to_bytes(), "state.pt")
    assert KEY not in repr(config_to_dict(config))  # Ray payloads carry the reference, not the value


def test_submit_moves_every_secret_into_the_job_environment(tmp_path):
    config = write_config(tmp_path, {"secret": FILE_SECRET}, "sqlite:///x.db")
    overrides = [f"storage.options={{key: {KEY}, client_kwargs: {{endpoint_url: 'http://127.0.0.1:9'}}}}",
                 f"storage.options.secret={SECRET}", f"tracking.mlflow_uri=http://planted-user:{PASSWORD}@127.0.0.1:9",
                 "model.preset=small"]
    submission = prepare_submission(config, overrides, {"USER_VAR": "kept"}, environ={})
    entrypoint = pipeline_entrypoint("c.yaml", submission.overrides)
    assert_hidden(entrypoint, "the entrypoint")
    assert_hidden(submission.config_text, "the uploaded config")
    assert "--set model.preset=small" in entrypoint  # overrides without secrets pass as given
    assert set(PLANTED) <= set(submission.env_vars.values()) and submission.env_vars["USER_VAR"] == "kept"
    assert set(PLANTED) <= set(submission.secret_values) and "kept" not in submission.secret_values

    # the job's side: the same words and variables give back exactly what was planted
    (tmp_path / "job").mkdir()
    uploaded = tmp_path / "job" / "c.yaml"
    uploaded.write_text(submission.config_text)
    os.environ.update(submission.env_vars)
    job_config = load_yaml_config(CorrvosConfig, uploaded, shlex.split(entrypoint)[7::2])
    assert job_config.storage.options == {"key": KEY, "client_kwargs": {"endpoint_url": "http://127.0.0.1:9"},
                                          "secret": SECRET}
    assert job_config.tracking.mlflow_uri == "http://127.0.0.1:9" and os.environ["MLFLOW_TRACKING_PASSWORD"] == PASSWORD


def test_submit_forwards_referenced_and_mlflow_variables_set_here(tmp_path):
    config = write_config(tmp_path, {"secret": "${env:MY_S3_SECRET}"}, "http://127.0.0.1:9")
    submission = prepare_submission(config, [], {}, environ={"MY_S3_SECRET": SECRET, "MLFLOW_TRACKING_PASSWORD": PASSWORD,
                                                             "UNRELATED": "x"})
    assert submission.config_text is None  # nothing literal to move: the file travels as it is
    assert submission.env_vars == {"MY_S3_SECRET": SECRET, "MLFLOW_TRACKING_PASSWORD": PASSWORD}


def test_a_config_holding_secrets_inside_the_project_is_never_uploaded(tmp_path):
    project = tmp_path / "project"
    (project / "configs" / "deep").mkdir(parents=True)
    (project / "configs" / "other.yaml").write_text("x: 1\n")
    (project / "pipelines").mkdir()
    config = write_config(project / "configs" / "deep", {"secret": SECRET}, "sqlite:///x.db")
    submission = prepare_submission(config, [], {}, environ={})
    with upload_dir(config, project, submission.config_text) as (working_dir, inside):
        assert inside == "configs/deep/c.yaml" and working_dir != project
        files = [p for p in working_dir.rglob("*") if p.is_file()]
        assert {p.relative_to(working_dir).as_posix() for p in files} == {"configs/other.yaml", "configs/deep/c.yaml"}
        for path in files:
            assert_hidden(path.read_bytes(), str(path))
    assert config.read_text().count(SECRET) == 1  # the project itself untouched


class _Health(http.server.BaseHTTPRequestHandler):
    """/health: 200 for the planted credentials, 401 for anything else."""

    expected = "Basic " + base64.b64encode(f"planted-user:{PASSWORD}".encode()).decode()

    def do_GET(self) -> None:  # http.server's name for it
        self.send_response(200 if self.headers.get("Authorization") == self.expected else 401)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture()
def health_server() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server.server_port
    finally:
        server.shutdown()
        server.server_close()


def test_a_tracking_uri_with_credentials_is_checked_with_them(health_server):
    check_tracking_reachable(f"http://planted-user:{PASSWORD}@127.0.0.1:{health_server}")  # was: "unreachable"
    os.environ.update(MLFLOW_TRACKING_USERNAME="planted-user", MLFLOW_TRACKING_PASSWORD=PASSWORD)
    check_tracking_reachable(f"http://127.0.0.1:{health_server}")  # as after load: the credentials in the env
    with pytest.raises(CorrvosError, match="refused the credentials") as refused:
        check_tracking_reachable(f"http://planted-user:wrong-{PASSWORD}@127.0.0.1:{health_server}")
    assert f"http://127.0.0.1:{health_server}" in str(refused.value)
    assert_hidden(str(refused.value), "the error")


def test_a_silent_tracking_server_fails_within_the_timeout_in_one_line():
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        start = time.monotonic()
        with pytest.raises(CorrvosError, match="unreachable") as failed:
            check_tracking_reachable(f"http://planted-user:{PASSWORD}@127.0.0.1:{port}", timeout_s=0.5)
    assert time.monotonic() - start < 5
    message = str(failed.value)
    assert "\n" not in message and f"127.0.0.1:{port}" in message
    assert_hidden(message, "the error")
