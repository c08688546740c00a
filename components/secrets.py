"""Secrets in configs: `${env:NAME}` references, credentials split out of URIs, redaction of what is shown.

- Values under `SECRET_KEYS` (fsspec `storage.options`) may be references `${env:NAME}`. Each process
  resolves them from its own environment when it builds its config (`resolve`), and a config turned
  back into a plain dict shows the references again (`unresolve`), so a secret travels between
  processes only as an environment variable (Ray runtime_env `env_vars`), never in task arguments,
  entrypoints or written files.
- A URI under `CREDENTIAL_URIS` (`tracking.mlflow_uri`) loses its `user:password@` when loaded
  (`take_uri_credentials`): they go to MLflow's own MLFLOW_TRACKING_USERNAME / _PASSWORD variables.
- `externalize` is what `corrvos submit` does to config data: every literal in `storage.options` becomes
  a reference to a generated variable, credentials leave the tracking URI; `SecretEnv` collects them.
- `redact_uri` / `redact` for anything printed, logged or written in an error.
"""

from __future__ import annotations

import os
import re
from typing import Any, Iterable, Mapping
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from components.errors import ConfigError

SECRET_KEYS = ("storage.options",)  # dotted config keys whose values are secrets: never logged or written
CREDENTIAL_URIS = {"tracking.mlflow_uri": ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")}
GENERATED_PREFIX = "CORRVOS_SECRET_"  # the variables `externalize` generates
HIDDEN = "***"
_REFERENCE = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}")
_SECRET_QUERY = ("token", "secret", "password", "passwd", "signature", "credential", "key", "sig")

_references: dict[str, str] = {}  # value -> the reference this process resolved it from
_used: set[str] = set()  # variables this process's config depends on (references and taken credentials)


def reference(name: str) -> str:
    """The reference text for environment variable `name`: `${env:NAME}`."""
    return f"${{env:{name}}}"


def referenced_name(value: Any) -> str | None:
    """NAME when `value` is exactly a reference `${env:NAME}`, else None."""
    match = _REFERENCE.fullmatch(value) if isinstance(value, str) else None
    return match[1] if match else None


def is_secret_key(dotted: str) -> bool:
    """True for a dotted config key at or under one of `SECRET_KEYS`."""
    return any(dotted == key or dotted.startswith(key + ".") for key in SECRET_KEYS)


def resolve(value: Any, where: str) -> Any:
    """`value` with every `${env:NAME}` (nested in dicts and lists) replaced by $NAME; unset is a ConfigError."""
    if isinstance(value, Mapping):
        return {k: resolve(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(resolve(v, f"{where}[{i}]") for i, v in enumerate(value))
    name = referenced_name(value)
    if name is None:
        return value
    if name not in os.environ:
        raise ConfigError(f"{where}: environment variable {name} is not set (the config refers to it as "
                          f"{reference(name)})")
    resolved = os.environ[name]
    _references.setdefault(resolved, value)
    _used.add(name)
    return resolved


def unresolve(value: Any) -> Any:
    """`value` with every string this process resolved from a reference replaced by that reference again."""
    if isinstance(value, Mapping):
        return {k: unresolve(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(unresolve(v) for v in value)
    if isinstance(value, str):
        return _references.get(value, value)
    return value


def references_in(value: Any) -> list[str]:
    """The variable names referenced anywhere in `value`, in order of appearance."""
    if isinstance(value, Mapping):
        return [name for v in value.values() for name in references_in(v)]
    if isinstance(value, (list, tuple)):
        return [name for v in value for name in references_in(v)]
    name = referenced_name(value)
    return [name] if name else []


def split_credentials(uri: str) -> tuple[str, str | None, str | None]:
    """(URI without `user:password@`, user, password), both percent-decoded; None where absent."""
    parts = _split(uri)
    if parts is None or "@" not in parts.netloc:
        return uri, None, None
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user, colon, password = userinfo.partition(":")
    clean = urlunsplit(parts._replace(netloc=hostport))
    return clean, unquote(user) or None, unquote(password) if colon else None


def take_uri_credentials(uri: str, key: str = "tracking.mlflow_uri") -> str:
    """`uri` without userinfo; its user and password are set in this process's environment (`CREDENTIAL_URIS`)."""
    clean, user, password = split_credentials(uri)
    for variable, value in zip(CREDENTIAL_URIS[key], (user, password)):
        if value is not None:
            os.environ[variable] = value
            _used.add(variable)
    return clean


def secret_env() -> dict[str, str]:
    """The variables this process's config depends on, with their values: what its Ray workers need too."""
    return {name: os.environ[name] for name in sorted(_used) if name in os.environ}


def redact_uri(uri: str) -> str:
    """`uri` fit to print: a password (or a lone user, often a token) and secret-looking query values as ***."""
    parts = _split(uri)
    if parts is None:
        return re.sub(r"://[^/@\s]*@", f"://{HIDDEN}@", uri)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user, colon, _ = userinfo.partition(":")
        netloc = f"{user}:{HIDDEN}@{hostport}" if colon and user else f"{HIDDEN}@{hostport}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(_secret_name(k) for k, _ in pairs):
            query = urlencode([(k, HIDDEN if _secret_name(k) else v) for k, v in pairs], safe="*")
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every occurrence of each secret value (4+ characters) replaced by ***.

    A URL without credentials (an endpoint kept among the storage options) is not hidden.
    """
    hidden = {s for s in secrets if isinstance(s, str) and len(s) >= 4 and not _plain_url(s)}
    for value in sorted(hidden, key=len, reverse=True):
        text = text.replace(value, HIDDEN)
    return text


def public_config(plain: Mapping[str, Any]) -> dict[str, Any]:
    """A plain config dict fit to write or log: secret values hidden (references kept), URIs redacted."""
    def walk(node: Any, path: str) -> Any:
        if isinstance(node, Mapping):
            return {k: walk(v, f"{path}.{k}" if path else str(k)) for k, v in node.items()}
        if isinstance(node, (list, tuple)) and is_secret_key(path):
            return [walk(v, path) for v in node]
        if isinstance(node, str) and is_secret_key(path) and referenced_name(node) is None:
            return HIDDEN
        if isinstance(node, str) and path in CREDENTIAL_URIS:
            return redact_uri(node)
        return node

    return walk(plain, "")


class SecretEnv:
    """The environment variables `externalize` moves secrets into (one generated name per distinct value)."""

    def __init__(self, taken: Iterable[str] = ()) -> None:
        self.variables: dict[str, str] = {}
        self._taken = set(taken)
        self._names: dict[str, str] = {}

    def name_for(self, value: str) -> str:
        """The generated variable holding `value` (CORRVOS_SECRET_<n>), added on first use."""
        if value not in self._names:
            index = len(self._names)
            while f"{GENERATED_PREFIX}{index}" in self._taken:
                index += 1
            name = f"{GENERATED_PREFIX}{index}"
            self._taken.add(name)
            self._names[value] = name
            self.variables[name] = value
        return self._names[value]


def externalize(data: Any, env: SecretEnv, where: str = "") -> Any:
    """Config data (or the part of it at dotted key `where`) with literal secrets moved into `env`.

    Strings under `SECRET_KEYS` become references to generated variables; a URI under `CREDENTIAL_URIS`
    loses its userinfo, whose user and password become that key's variables.
    """
    if is_secret_key(where) and not isinstance(data, Mapping):
        if isinstance(data, (list, tuple)):
            return [externalize(v, env, where) for v in data]
        if isinstance(data, str) and referenced_name(data) is None:
            return reference(env.name_for(data))
        return data
    if isinstance(data, Mapping):
        return {k: externalize(v, env, f"{where}.{k}" if where else str(k)) for k, v in data.items()}
    if where in CREDENTIAL_URIS and isinstance(data, str):
        clean, user, password = split_credentials(data)
        for variable, value in zip(CREDENTIAL_URIS[where], (user, password)):
            if value is not None:
                env.variables[variable] = value
        return clean
    return data


def _split(uri: str):
    """urlsplit for `scheme://netloc...` strings; None for anything else or a malformed one."""
    if not isinstance(uri, str) or "://" not in uri:
        return None
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return None
    return parts if parts.netloc else None


def _plain_url(value: str) -> bool:
    """True for `scheme://host...` with no userinfo and no secret-looking query value."""
    parts = _split(value)
    return parts is not None and "@" not in parts.netloc and redact_uri(value) == value


def _secret_name(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in _SECRET_QUERY)
