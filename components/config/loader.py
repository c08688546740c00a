"""Build frozen dataclass configs from plain dicts, strictly: an unknown key is an error naming it.

Sections may carry a `preset` field; the preset's values are applied first and explicit keys
override them, so `model: {preset: small, value_dim: 96}` means "small, but with 96-d values".
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from pathlib import Path
from typing import Any, Mapping, TypeVar

import yaml

from components import secrets
from components.errors import ConfigError

T = TypeVar("T")



class ConfigYamlLoader(yaml.SafeLoader):
    """PyYAML's safe loader, reading `1e-4` as the number YAML 1.2 (and every user) means, not a string."""


ConfigYamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def read_yaml(text: str) -> Any:
    """YAML text as plain data through `ConfigYamlLoader` (safe: plain types only, never objects)."""
    loader = ConfigYamlLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()

def config_from_dict(cls: type[T], data: Mapping[str, Any] | None, where: str = "") -> T:
    """Construct dataclass `cls` from `data`, recursing into nested dataclasses and presets."""
    data = dict(data or {})
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'config'}: expected a mapping, got {type(data).__name__}")
    presets = getattr(cls, "PRESETS", None)
    name = data.get("preset", _default_preset(cls)) if presets is not None else None
    if name is not None:
        if name not in presets:
            raise ConfigError(f"{_key(where, 'preset')}: unknown preset {name!r} (choose from {sorted(presets)})")
        data = {**presets[name], **data, "preset": name}
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"unknown config key {_key(where, unknown[0])!r} (known: {', '.join(sorted(fields))})")
    hints = typing.get_type_hints(cls)
    kwargs = {name: _coerce(hints[name], value, _key(where, name)) for name, value in data.items()}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        message = str(exc)
        named = where and message.startswith(f"{where}.")  # the range checks name the full dotted key already
        raise ConfigError(message if named else f"{where or 'config'}: {message}") from None


def config_to_dict(config: Any) -> dict[str, Any]:
    """Plain-dict form of a config (tuples become lists) for YAML, JSON, MLflow params and Ray payloads.

    Secrets resolved from `${env:NAME}` references show as those references again, so a payload or a
    document made from a config never holds their values (`components.secrets`).
    """
    def plain(value: Any, path: str) -> Any:
        if dataclasses.is_dataclass(value):
            return {f.name: plain(getattr(value, f.name), _key(path, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, (list, tuple)):
            return [plain(v, path) for v in value]
        if isinstance(value, dict):
            items = {k: plain(v, _key(path, str(k))) for k, v in value.items()}
            return secrets.unresolve(items) if path in secrets.SECRET_KEYS else items
        return value

    return plain(config, "")


def load_yaml_config(cls: type[T], path: str | Path, overrides: list[str] | None = None) -> T:
    """Read a YAML file, apply `key.sub=value` overrides, and build `cls` strictly."""
    path = Path(path)
    try:
        data = read_yaml(path.read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    data = apply_overrides(data, overrides or [])
    return config_from_dict(cls, data)


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Return a copy of `data` with each `a.b.c=value` set; values are parsed as YAML scalars."""
    result = _deep_copy(data)
    for item in overrides:
        if "=" not in item:
            key = re.match(r"[\w.-]*", item.strip())[0]
            shown = f"{key}..." if secrets.is_secret_key(key) else item  # never echo what may be a secret
            raise ConfigError(f"override {shown!r}: expected key=value")
        dotted, raw = item.split("=", 1)
        keys = dotted.strip().split(".")
        node = result
        for key in keys[:-1]:
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                raise ConfigError(f"override {dotted!r}: {key!r} is not a section")
            node = child
        node[keys[-1]] = read_yaml(raw)
    return result


def _default_preset(cls: type) -> str | None:
    for f in dataclasses.fields(cls):
        if f.name == "preset" and f.default is not dataclasses.MISSING:
            return f.default
    return None


def _deep_copy(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _deep_copy(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_deep_copy(v) for v in data]
    return data


def _key(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def _shown(value: Any, where: str) -> str:
    """`value` as an error message may show it: a secret's value never."""
    return f"a {type(value).__name__} (value hidden)" if secrets.is_secret_key(where) else repr(value)


def _coerce(hint: Any, value: Any, where: str) -> Any:
    """Check `value` against type `hint`, converting the few safe cases (int->float, list->tuple)."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(arg, value, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0])
    if dataclasses.is_dataclass(hint):
        if dataclasses.is_dataclass(value):
            return value
        return config_from_dict(hint, value, where)
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{where}: {value!r} is not one of {list(args)}")
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
        if len(args) != len(value):
            raise ConfigError(f"{where}: expected {len(args)} items, got {len(value)}")
        return tuple(_coerce(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {_shown(value, where)}")
        return secrets.resolve(dict(value), where) if where in secrets.SECRET_KEYS else dict(value)
    if hint is Any:
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {_shown(value, where)}")
        return secrets.take_uri_credentials(value, where) if where in secrets.CREDENTIAL_URIS else value
    return value
