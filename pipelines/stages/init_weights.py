"""`pipeline.init_from`: the checkpoint `tune` / `train` start from instead of `pretrain`'s weights."""

from __future__ import annotations

from typing import Any

from components.config import CorrvosConfig, ModelConfig, config_to_dict
from components.errors import ConfigError, CorrvosError
from components.storage import atomic_write_bytes, load_torch, read_bytes
from pipelines.stages.context import StageContext

# Model fields that decide the network's tensors: an init checkpoint must agree on each
SHAPE_FIELDS = ("name", "key_backbone", "value_backbone", "backbone_width", "key_dim", "value_dim",
                "decoder_dims", "decoder_entry", "hidden_dim")


def stage_init(config: CorrvosConfig, context: StageContext) -> str:
    """`pretrain`'s weights when it ran, else `pipeline.init_from` copied into this stage's folder."""
    if "pretrain" in context.inputs:
        return context.inputs["pretrain"]["model"]
    return imported_init(config, context)


def imported_init(config: CorrvosConfig, context: StageContext) -> str:
    """Copy the checkpoint `pipeline.init_from` names to `<stage folder>/init.pt` (so Ray workers on any
    node read the same bytes, and a moved alias cannot change a finished stage) after checking that its
    network is the one `model` describes; returns the copy's URI."""
    from pipelines.registry import resolve_model_ref

    ref = config.pipeline.init_from
    if not ref:
        raise ConfigError("pipeline.init_from is not set and no pretrain stage ran")
    local = resolve_model_ref(ref, context.tracking_uri)
    options = None if ref.startswith("models:/") else context.storage_options
    try:
        blob = read_bytes(local, options)
    except FileNotFoundError:
        raise CorrvosError(f"pipeline.init_from {ref!r}: file not found") from None
    target = f"{context.out.rstrip('/')}/init.pt"
    atomic_write_bytes(target, blob, context.storage_options)
    payload = load_torch(target, f"pipeline.init_from {ref!r}", CorrvosError)
    check_same_network(config.model, payload, ref)
    return target


def check_same_network(model: ModelConfig, payload: Any, ref: str) -> None:
    """A one-line error naming the first model field where the checkpoint's network differs from `model`."""
    stored = payload.get("model_config") if isinstance(payload, dict) else None
    if not isinstance(stored, dict):
        raise CorrvosError(f"pipeline.init_from {ref!r}: not a corrvos inference checkpoint (no model_config); "
                           "convert official weights with `corrvos import-weights` first")
    wanted = config_to_dict(model)
    for key in SHAPE_FIELDS:
        have, want = stored.get(key), wanted[key]
        if isinstance(have, (list, tuple)):
            have, want = list(have), list(want)
        if have != want:
            raise ConfigError(f"pipeline.init_from {ref!r}: its network has model.{key}={have!r}, the config's "
                              f"model.{key}={want!r}; set model.* to match (e.g. model.preset)")
