"""Importers of published checkpoints: format name -> converter, and the strict tensor steps they share.

`import_checkpoint(state, format)` turns an official state dict (inference or training network, with
or without DDP's `module.` prefix) into `ImportedWeights` whose state dict loads into corrvos's
network with `strict=True`. Every importer renames through an explicit table and checks the result
against the network's own keys and shapes, so a missing, unexpected or misshapen key is one error
naming it, never a partial load. Importer modules are loaded lazily: a format whose module is absent
is refused by name.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any, Iterable, Mapping

import torch

from components.errors import CorrvosError
from components.model.imports.base import ImportedWeights

FORMATS: dict[str, str] = {
    "stcn": "components.model.imports.stcn",
    "xmem": "components.model.imports.xmem",
    "vos-correspondence": "components.model.imports.vos_correspondence",
}
WRAPPER_KEYS = ("network", "state_dict", "model")  # training checkpoints keep the weights under one of these

__all__ = ["FORMATS", "ImportedWeights", "import_checkpoint", "importer", "unwrap_checkpoint"]


def importer(format: str) -> ModuleType:
    """The converter module of `format` (a module with `FORMAT` and `convert(state) -> ImportedWeights`)."""
    if format not in FORMATS:
        raise CorrvosError(f"format {format!r}: unknown (choose from {', '.join(sorted(FORMATS))})")
    try:
        return importlib.import_module(FORMATS[format])
    except ModuleNotFoundError as exc:
        if exc.name != FORMATS[format]:
            raise
        raise CorrvosError(f"format {format!r}: its importer is not part of this build") from None


def import_checkpoint(state_dict: Mapping[str, Any], format: str) -> ImportedWeights:
    """An official state dict (or training checkpoint holding one) as corrvos model config + strict state dict."""
    return importer(format).convert(strip_prefix(unwrap_checkpoint(state_dict)))


def unwrap_checkpoint(payload: Any, where: str = "checkpoint") -> dict[str, torch.Tensor]:
    """The weights inside a loaded file: a mapping of tensors as is, else the one under `network`/`state_dict`/`model`."""
    for _ in range(3):  # a few levels of wrapping at most
        if not isinstance(payload, Mapping):
            break
        if payload and all(isinstance(v, torch.Tensor) for v in payload.values()):
            return {str(k): v for k, v in payload.items()}
        inner = next((payload[k] for k in WRAPPER_KEYS if isinstance(payload.get(k), Mapping)), None)
        if inner is None:
            break
        payload = inner
    raise CorrvosError(f"{where}: no state dict found (expected a mapping of tensors, or one under "
                       f"{' / '.join(repr(k) for k in WRAPPER_KEYS)})")


def strip_prefix(state: Mapping[str, torch.Tensor], prefix: str = "module.") -> dict[str, torch.Tensor]:
    """Drop DDP's `module.` prefix from every key that has it; two keys becoming one is an error naming it."""
    result: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        name = key[len(prefix):] if key.startswith(prefix) else key
        if name in result:
            raise CorrvosError(f"checkpoint: key {name!r} appears both with and without the {prefix!r} prefix")
        result[name] = value
    return result


def rename(state: Mapping[str, torch.Tensor], rules: Iterable[tuple[str, str]], drop: Iterable[str] = (),
           where: str = "checkpoint") -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Rename by the first matching (official prefix, corrvos prefix) rule; keys under `drop` prefixes are left
    out. Returns (renamed state, corrvos key -> official key); a key no rule covers is an error naming it."""
    rules, drop = list(rules), tuple(drop)
    renamed: dict[str, torch.Tensor] = {}
    origin: dict[str, str] = {}
    for key, value in state.items():
        if drop and key.startswith(drop):
            continue
        match = next(((old, new) for old, new in rules if key.startswith(old)), None)
        if match is None:
            raise CorrvosError(f"{where}: unexpected key {key!r}")
        name = match[1] + key[len(match[0]):]
        renamed[name] = value
        origin[name] = key
    return renamed, origin


def check_exact(state: Mapping[str, torch.Tensor], expected: Mapping[str, torch.Tensor], origin: Mapping[str, str],
                where: str = "checkpoint", official_name: Any = None) -> None:
    """Keys and shapes exactly the network's; the first problem is named by its official key (and corrvos key)."""
    for key in state:
        if key not in expected:
            raise CorrvosError(f"{where}: unexpected key {origin.get(key, key)!r}")
    for key, reference in expected.items():
        if key not in state:
            official = official_name(key) if official_name is not None else key
            raise CorrvosError(f"{where}: missing key {official!r} (corrvos {key!r})")
        if tuple(state[key].shape) != tuple(reference.shape):
            raise CorrvosError(f"{where}: key {origin.get(key, key)!r} has shape {tuple(state[key].shape)}, "
                               f"expected {tuple(reference.shape)}")


def take(state: dict[str, torch.Tensor], key: str, where: str = "checkpoint") -> torch.Tensor:
    """Remove and return `state[key]`; its absence is an error naming it."""
    if key not in state:
        raise CorrvosError(f"{where}: missing key {key!r}")
    return state.pop(key)


def fold_bias_into_batchnorm(state: dict[str, torch.Tensor], conv: str, bn: str, where: str = "checkpoint") -> None:
    """conv(x) + b followed by BN(mean m) equals conv(x) followed by BN(mean m - b): exact in eval mode.

    Used for convolutions that carry a bias where corrvos's (torchvision-layout) trunk has none."""
    bias = take(state, f"{conv}.bias", where)
    mean_key = f"{bn}.running_mean"
    if mean_key not in state:
        raise CorrvosError(f"{where}: missing key {mean_key!r} (the BatchNorm after {conv!r})")
    if bias.shape != state[mean_key].shape:
        raise CorrvosError(f"{where}: key {conv + '.bias'!r} has shape {tuple(bias.shape)}, "
                           f"expected {tuple(state[mean_key].shape)}")
    state[mean_key] = state[mean_key] - bias.to(state[mean_key].dtype)


def swap_input_blocks(weight: torch.Tensor, first: int) -> torch.Tensor:
    """Input channels [A (first), B] -> [B, A] of a conv weight: the same conv on a concatenation in the other order."""
    return torch.cat([weight[:, first:], weight[:, :first]], dim=1).contiguous()


def pad_input_channels(weight: torch.Tensor, channels: int) -> torch.Tensor:
    """Zero input channels appended up to `channels` (an official stage-0 4-channel value conv1 -> 5)."""
    missing = channels - weight.shape[1]
    if missing <= 0:
        return weight
    return torch.cat([weight, weight.new_zeros(weight.shape[0], missing, *weight.shape[2:])], dim=1)


def network_shapes(model_config: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """The state dict of the corrvos network `model_config` builds, on the meta device (shapes only, no memory)."""
    from components.config import config_from_dict
    from components.config.schema import ModelConfig
    from components.model.factory import build_network

    config = config_from_dict(ModelConfig, dict(model_config))
    with torch.device("meta"):
        network = build_network(config)
    return network.state_dict()
