"""`corrvos submit` with planted credentials: only the job's runtime_env `env_vars` hold them, and the job uses them.

The config file and three kinds of `--set` carry planted S3 credentials and an MLflow password; the
job is the real `corrvos run`, which checks its inputs before starting anything: it lists an optional
S3 source at a loopback fake (which checks the request's SigV4 signature against the planted key and
secret) and asks the fake tracking server's /health (which answers 418 to the planted password, 401
to anything else, so the job stops there with one line). Then the planted strings are looked for in
everything submit printed, the job's info, its log and every file the Ray head wrote or unpacked.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.server
import json
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import ClassVar, Iterator

import pytest
import yaml

from cluster.local import Service
from cluster.submit import SECRET_ENV_METADATA, job_client

# made at run time: the project's own sources (this file among them) travel with every upload
RUN = uuid.uuid4().hex[:8]
KEY, SECRET, PASSWORD, FILE_SECRET = (f"AKIAPLANTED{RUN}", f"s3cr3t-PLANTED-{RUN}", f"mlflowPASSplanted{RUN}",
                                      f"fileSECRETplanted{RUN}")
PLANTED = (KEY, SECRET, PASSWORD, FILE_SECRET)
CORRVOS = str(Path(sys.executable).parent / "corrvos")
EMPTY_LISTING = (b'<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
                 b"<Name>planted-bucket</Name><KeyCount>0</KeyCount><IsTruncated>false</IsTruncated></ListBucketResult>")
NO_SUCH_KEY = b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchKey</Code><Message>none</Message></Error>'


def signed_with(key: str, secret: str, method: str, path: str, headers) -> bool:
    """Whether a query-less S3 request carries an AWS SigV4 signature made with `key` and `secret`."""
    scheme, _, rest = (headers.get("Authorization") or "").partition(" ")
    fields = dict(part.strip().split("=", 1) for part in rest.split(",") if "=" in part)
    if scheme != "AWS4-HMAC-SHA256" or not fields.get("Credential", "").startswith(key + "/"):
        return False
    date, region, service, _ = fields["Credential"].split("/")[1:]
    signed = fields["SignedHeaders"]
    canonical = "\n".join([method, path, "", *(f"{h}:{headers[h].strip()}" for h in signed.split(";")), "", signed,
                           headers["x-amz-content-sha256"]])
    scope = f"{date}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", headers["x-amz-date"], scope, hashlib.sha256(canonical.encode()).hexdigest()])
    signing_key = f"AWS4{secret}".encode()
    for part in (date, region, service, "aws4_request"):
        signing_key = hmac.new(signing_key, part.encode(), hashlib.sha256).digest()
    return hmac.compare_digest(hmac.new(signing_key, to_sign.encode(), hashlib.sha256).hexdigest(), fields["Signature"])


class FakeServices(http.server.BaseHTTPRequestHandler):
    """One loopback server standing for both the S3 endpoint and the MLflow tracking server."""

    seen: ClassVar[list[str]] = []

    def _answer(self) -> None:
        if self.path == "/health":
            expected = "Basic " + base64.b64encode(f"planted-user:{PASSWORD}".encode()).decode()
            right = self.headers.get("Authorization") == expected
            self.seen.append(f"health {'planted credentials' if right else 'other credentials'}")
            self._send(418 if right else 401, b"")
            return
        if "?" not in self.path and signed_with(KEY, SECRET, self.command, self.path, self.headers):
            self.seen.append("s3 signed with the planted key and secret")
        self._send(200, EMPTY_LISTING) if "list-type=2" in self.path else self._send(404, NO_SUCH_KEY)

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_HEAD = _answer  # http.server looks these names up

    def log_message(self, *args) -> None:
        pass


@pytest.fixture()
def fake_services() -> Iterator[str]:
    FakeServices.seen = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeServices)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        yield f"127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def planted_in(text: str) -> list[str]:
    return [s for s in PLANTED if s in text]


def test_submitted_secrets_reach_the_job_only_through_its_environment(ray_head: Service, fake_services: str,
                                                                    tmp_path: Path):
    synthetic = "videos=2,frames=6,size=64,seed={}"
    config = tmp_path / "secret config.yaml"
    config.write_text(yaml.safe_dump({
        "pipeline": {"name": "secrets", "sources": [
            {"name": "train", "kind": "synthetic", "source": synthetic.format(0), "roles": ["pretrain", "train"]},
            {"name": "val", "kind": "synthetic", "source": synthetic.format(1), "roles": ["val"]},
            {"name": "test", "kind": "synthetic", "source": synthetic.format(2), "roles": ["test"]},
            {"name": "remote", "kind": "davis", "source": "s3://planted-bucket/videos", "roles": ["train"],
             "optional": True},
        ]},
        "storage": {"root": str(tmp_path / "runs"), "options": {"secret": FILE_SECRET}},
    }))
    result = subprocess.run([
        CORRVOS, "submit", str(config), "--address", ray_head.dashboard_url,
        "--set", f"storage.options={{key: {KEY}, client_kwargs: {{endpoint_url: 'http://{fake_services}'}}}}",
        "--set", f"storage.options.secret={SECRET}",
        "--set", f"tracking.mlflow_uri=http://planted-user:{PASSWORD}@{fake_services}",
    ], capture_output=True, text=True, timeout=300)

    # the job stopped where the fake tracking server meant it to: it sent the planted password
    assert result.returncode == 1, (result.stdout[-3000:], result.stderr)
    assert f"tracking server http://{fake_services} answered /health with HTTP 418" in result.stdout, result.stdout[-3000:]
    assert "health planted credentials" in FakeServices.seen, FakeServices.seen
    assert "s3 signed with the planted key and secret" in FakeServices.seen, FakeServices.seen
    assert not planted_in(result.stdout + result.stderr), "submit printed a secret"

    client = job_client(ray_head.dashboard_url)
    job_id = next(line.split()[-1] for line in result.stdout.splitlines() if line.startswith("submitted job "))
    info = json.loads(client.get_job_info(job_id).model_dump_json())
    env_vars = info["runtime_env"].pop("env_vars")
    assert set(PLANTED) <= set(env_vars.values())  # the one place the secrets are
    assert {name for name, value in env_vars.items() if value in PLANTED} <= set(
        info["metadata"][SECRET_ENV_METADATA].split())  # names only: what submit hides when it prints the job
    assert "${env:CORRVOS_SECRET_" in info["entrypoint"]
    assert not planted_in(json.dumps(info)), "job info (entrypoint, metadata, message, runtime_env) holds a secret"
    assert not planted_in(client.get_job_logs(job_id)), "the job's log holds a secret"
    holding = {path.name for path in Path(ray_head.temp_dir).rglob("*")  # logs, the unpacked upload, session files
               if path.is_file() and not path.is_symlink() and planted_in(path.read_bytes().decode("latin-1"))}
    # Ray's runtime-env agent logs every runtime_env it sets up, env_vars included, at INFO on each node
    # (readable with node access or the dashboard's log API, behind the same authentication as job info)
    assert holding <= {"runtime_env_agent.log"}, holding
