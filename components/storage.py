"""Small fsspec helpers: open a URI's filesystem with bounded network defaults, read a URI, write one
atomically (temporary name, then move into place), check a storage root, and turn storage failures
into one line naming the URI.

S3 without limits waits minutes on an endpoint that accepts and never answers (s3fs: 5 attempts of
botocore's 5, 15 s each); `fs_options` / `open_fs` add explicit timeouts and retries that the
user's `storage.options` override key by key.
"""

from __future__ import annotations

import io
import os
import pickle
import re
import uuid
from contextlib import contextmanager
from typing import Any, Iterator, Mapping

import fsspec

from components.errors import CorrvosError

S3_PROTOCOLS = ("s3", "s3a")
# botocore Config for every S3 client: seconds to connect, seconds a read may wait for bytes, and
# attempts per request (standard mode: transient errors and throttling, with jittered backoff).
S3_CONFIG_DEFAULTS: dict[str, Any] = {"connect_timeout": 5, "read_timeout": 10,
                                      "retries": {"total_max_attempts": 2, "mode": "standard"}}
S3_RETRIES_DEFAULT = 2  # s3fs's own attempts around each call (its default is 5); storage.options `retries` overrides
LOCAL_PROTOCOLS = ("file", "local")


class StorageError(CorrvosError):
    """A storage URI cannot be reached, read or written: endpoint silent or refusing, no credentials, access denied."""


def fs_options(uri: str, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """fsspec options for `uri`: the user's, plus bounded S3 timeouts and retries wherever they set none.

    `config_kwargs` (botocore Config) is merged key by key; corrvos's own `retries` key (s3fs attempts)
    is removed here and applied by `open_fs`, because s3fs takes it only as an attribute.
    """
    merged = {key: value for key, value in (options or {}).items() if key != "retries"}
    if _protocol(uri) in S3_PROTOCOLS:
        merged["config_kwargs"] = {**S3_CONFIG_DEFAULTS, **dict(merged.get("config_kwargs") or {})}
    return merged


def open_fs(uri: str, options: Mapping[str, Any] | None = None) -> tuple[fsspec.AbstractFileSystem, str]:
    """(filesystem, path) of `uri` with `fs_options`' bounded defaults; the one place storage options reach fsspec."""
    fs, path = fsspec.core.url_to_fs(uri, **fs_options(uri, options))
    if _protocol(uri) in S3_PROTOCOLS:
        fs.retries = max(1, int((options or {}).get("retries", S3_RETRIES_DEFAULT)))
    return fs, path


def absolute_uri(uri: str) -> str:
    """A local path made absolute (Ray workers run in other directories); a URI without its trailing slash."""
    if "://" not in uri:
        return os.path.abspath(uri)
    return uri.rstrip("/")


def read_bytes(uri: str, storage_options: Mapping[str, Any] | None = None) -> bytes:
    """All bytes at a local path or fsspec URI; FileNotFoundError when absent, StorageError when unreachable."""
    with storage_errors(uri, storage_options):
        fs, path = open_fs(uri, storage_options)
        with fs.open(path, "rb") as handle:
            return handle.read()


def atomic_write_bytes(uri: str, data: bytes, storage_options: Mapping[str, Any] | None = None) -> None:
    """Write `data` to a temporary sibling of `uri`, then move it into place, so readers never see half a file."""
    with storage_errors(uri, storage_options):
        fs, path = open_fs(uri, storage_options)
        parent = path.rsplit("/", 1)[0] if "/" in path else ""
        if parent:
            fs.makedirs(parent, exist_ok=True)
        temporary = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
        try:
            with fs.open(temporary, "wb") as handle:
                handle.write(data)
            fs.mv(temporary, path)
        except BaseException as exc:
            # after a storage failure the write did not land, and asking again would wait as long again
            if describe_storage_failure(exc, uri, storage_options) is None and fs.exists(temporary):
                fs.rm(temporary)
            raise


def check_storage_root(root: str, options: Mapping[str, Any] | None = None) -> None:
    """Before Ray starts: one bounded request to a remote storage root; StorageError naming it when that fails.

    For S3 a one-key listing under the root (what every stage needs: the bucket exists, the endpoint
    answers, the credentials are accepted), one attempt within the configured timeouts; local roots pass.
    """
    protocol = _protocol(root)
    if protocol in LOCAL_PROTOCOLS:
        return
    probe = dict(options or {})
    if protocol in S3_PROTOCOLS:
        probe["retries"] = 1
        probe["config_kwargs"] = {"retries": {"total_max_attempts": 1}, **dict(probe.get("config_kwargs") or {})}
    try:
        fs, path = open_fs(root, probe)
    except (ImportError, ValueError) as exc:  # an unknown protocol, its package not installed, a bad option
        raise StorageError(f"storage root {root}: {_first_line(exc)}") from None
    with storage_errors(root, probe):
        if protocol not in S3_PROTOCOLS:
            fs.exists(path)
            return
        bucket, _, key = path.partition("/")
        try:
            fs.call_s3("list_objects_v2", Bucket=bucket, Prefix=key, MaxKeys=1)
        except FileNotFoundError:
            raise StorageError(f"{root}: bucket {bucket!r} does not exist at {s3_endpoint(options)}") from None


@contextmanager
def storage_errors(uri: str, options: Mapping[str, Any] | None = None) -> Iterator[None]:
    """Turn a failure to reach remote storage in the block into one StorageError line naming `uri` and its endpoint."""
    try:
        yield
    except CorrvosError:
        raise
    except Exception as exc:
        reason = describe_storage_failure(exc, uri, options)
        if reason is None:
            raise
        raise StorageError(f"{uri}: {reason}") from None


def describe_storage_failure(exc: BaseException, uri: str, options: Mapping[str, Any] | None = None) -> str | None:
    """One line for a network, credential or permission failure on remote `uri`; None for anything else.

    FileNotFoundError and every local-path error stay as they are: callers handle a missing file.
    """
    if _protocol(uri) in LOCAL_PROTOCOLS or isinstance(exc, FileNotFoundError):
        return None
    endpoint = s3_endpoint(options) if _protocol(uri) in S3_PROTOCOLS else _protocol(uri)
    config = fs_options(uri, options).get("config_kwargs", {})
    name = type(exc).__name__
    try:
        from botocore import exceptions as boto
    except ImportError:  # no S3 support installed: only the generic cases below
        boto = None
    if boto is not None and isinstance(exc, (boto.NoCredentialsError, boto.PartialCredentialsError)):
        return (f"no S3 credentials for {endpoint} (set AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, AWS_PROFILE, "
                "or storage.options key / secret)")
    if (boto is not None and isinstance(exc, (boto.ReadTimeoutError, boto.ConnectTimeoutError))) or isinstance(
            exc, TimeoutError) or name == "FSTimeoutError":
        limits = f"connect {config.get('connect_timeout', '?')} s, read {config.get('read_timeout', '?')} s"
        return (f"{endpoint} did not answer ({limits}, {_attempts(config, options)}; "
                "storage.options config_kwargs / retries change them)")
    if boto is not None and isinstance(exc, boto.EndpointConnectionError):
        return f"cannot connect to {endpoint} ({_first_line(exc)})"
    if isinstance(exc, TypeError) and "keyword argument" in str(exc):  # s3fs passes unknown options on to aiobotocore
        return f"storage.options not accepted by the {_protocol(uri)} filesystem ({_first_line(exc)})"
    if isinstance(exc, PermissionError):
        return f"access denied by {endpoint} ({_first_line(exc)})"
    if boto is not None and isinstance(exc, (boto.BotoCoreError, boto.ClientError)):
        return f"{endpoint}: {name}: {_first_line(exc)}"
    if isinstance(exc, OSError) and _protocol(uri) in S3_PROTOCOLS:
        return f"{endpoint}: {_first_line(exc)}"
    return None


def s3_endpoint(options: Mapping[str, Any] | None = None) -> str:
    """The S3 endpoint a client with `options` talks to (without any credentials in it), for messages."""
    options = options or {}
    url = (options.get("endpoint_url") or (options.get("client_kwargs") or {}).get("endpoint_url")
           or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL"))
    if not url:
        return "the AWS S3 endpoint"
    return "S3 endpoint " + re.sub(r"//[^/@]*@", "//", str(url))


def load_torch(uri: str, what: str, error: type[Exception]) -> Any:
    """`torch.load` (weights only) of the file at `uri`; a missing or foreign file raises `error` naming `what` and `uri`."""
    import torch

    try:
        blob = read_bytes(uri)
    except FileNotFoundError:
        raise error(f"{what} {uri!r}: file not found") from None
    try:
        return torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # weights_only refuses anything but tensors and plain values, unrun
        raise error(f"{what} {uri!r}: refused, it holds Python objects other than tensors and plain values, "
                    "which corrvos never unpickles (they could run code)") from None
    except Exception as exc:  # torch raises several types for a truncated or foreign file
        raise error(f"{what} {uri!r}: not a torch file ({type(exc).__name__})") from None


def _protocol(uri: str) -> str:
    """The first protocol of `uri` ('file' for a plain path)."""
    protocol = fsspec.utils.get_protocol(uri)
    return protocol if isinstance(protocol, str) else protocol[0]


def _attempts(config: Mapping[str, Any], options: Mapping[str, Any] | None) -> str:
    """'N attempts': s3fs's attempts times botocore's, as configured."""
    retries = config.get("retries") or {}
    botocore = retries.get("total_max_attempts") or retries.get("max_attempts", 0) + 1
    total = int((options or {}).get("retries", S3_RETRIES_DEFAULT)) * int(botocore)
    return f"{total} attempt{'s' if total != 1 else ''}"


def _first_line(exc: BaseException) -> str:
    """The first non-empty line of an exception's message (its type name when it has none)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
