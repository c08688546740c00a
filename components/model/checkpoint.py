"""Inference checkpoints: the inference network's weights plus the model config that built them.

One self-describing file (a torch pickle of plain tensors and dicts), written atomically to any
fsspec URI, so `corrvos predict --model URI` needs nothing else. A registered checkpoint also
carries, in `metadata["scored_with"]`, the settings its J&F was measured with (inference and probe
configs, the held-out set's version, the J&F): whoever serves the file reads them from the file.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from torch import nn

from components.config import InferenceConfig, ModelConfig, ProbeConfig, config_from_dict, config_to_dict
from components.errors import ConfigError, CorrvosError
from components.model.factory import build_network
from components.storage import atomic_write_bytes, load_torch

FORMAT = "corrvos-inference/1"
SCORED_WITH = "scored_with"  # metadata entry of a registered checkpoint: the settings its J&F was measured with


@dataclass(frozen=True)
class ScoredSettings:
    """What a checkpoint's J&F was measured with; None where the file records nothing (not registered, or old)."""

    inference: InferenceConfig | None = None
    probe: ProbeConfig | None = None
    eval_dataset_version: str | None = None
    jf: float | None = None

    def to_metadata(self) -> dict[str, Any]:
        """Plain dicts and scalars (what `torch.load(weights_only=True)` reads back)."""
        return {
            "inference": config_to_dict(self.inference) if self.inference is not None else None,
            "probe": config_to_dict(self.probe) if self.probe is not None else None,
            "eval_dataset_version": self.eval_dataset_version,
            "jf": float(self.jf) if self.jf is not None else None,
        }

    @classmethod
    def from_metadata(cls, metadata: dict[str, Any], where: str = "model") -> ScoredSettings:
        """The settings in a checkpoint's metadata (all None when it has none); a malformed entry is a CorrvosError."""
        stored = metadata.get(SCORED_WITH)
        if stored is None:
            return cls()
        if not isinstance(stored, dict):
            raise CorrvosError(f"{where}: metadata {SCORED_WITH!r} is not a mapping")
        try:
            inference = stored.get("inference")
            probe = stored.get("probe")
            return cls(
                inference=config_from_dict(InferenceConfig, inference, "inference") if inference is not None else None,
                probe=config_from_dict(ProbeConfig, probe, "probe") if probe is not None else None,
                eval_dataset_version=stored.get("eval_dataset_version"),
                jf=float(stored["jf"]) if stored.get("jf") is not None else None,
            )
        except (ConfigError, TypeError, ValueError) as exc:
            raise CorrvosError(f"{where}: stored settings do not load ({exc})") from None


def save_inference_checkpoint(
    uri: str, state_dict: dict[str, torch.Tensor], model_config: ModelConfig, metadata: dict[str, Any] | None = None
) -> None:
    """Write inference weights (no head g) and the model config to `uri` atomically."""
    if any(k.startswith("correspondence_head.") for k in state_dict):
        raise ValueError("an inference checkpoint must not contain the training-only head g")
    buffer = io.BytesIO()
    payload = {
        "format": FORMAT,
        "model_config": config_to_dict(model_config),
        "state_dict": {k: v.detach().cpu() for k, v in state_dict.items()},
        "metadata": dict(metadata or {}),
    }
    torch.save(payload, buffer)
    atomic_write_bytes(uri, buffer.getvalue())


def load_inference_checkpoint(uri: str, device: torch.device | str = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Build the inference network from `uri`; returns (model in eval mode on `device`, metadata)."""
    payload = load_torch(uri, "model", CorrvosError)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CorrvosError(f"model {uri!r}: not a corrvos inference checkpoint (expected format {FORMAT})")
    config_dict = dict(payload["model_config"])
    config_dict["backbone_weights"] = {}  # the checkpoint already holds every weight
    try:
        config = config_from_dict(ModelConfig, config_dict)
    except ConfigError as exc:
        raise CorrvosError(f"model {uri!r}: {exc}") from None
    model = build_network(config)
    state = payload.get("state_dict")
    if not isinstance(state, dict):
        raise CorrvosError(f"model {uri!r}: 'state_dict' is {type(state).__name__}, expected a mapping of tensors")
    check_state_keys(model, state, f"model {uri!r}")
    model.load_state_dict(state, strict=True)
    return model.to(device).eval(), dict(payload.get("metadata", {}))


def check_state_keys(model: nn.Module, state: dict[str, Any], where: str) -> None:
    """One line naming what is missing, extra or misshapen, instead of torch's multi-line load error."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    extra = [k for k in state if k not in expected]
    misshapen = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in expected.items()
                 if k in state and isinstance(state[k], torch.Tensor) and state[k].shape != v.shape]
    problems = []
    if missing:
        problems.append(f"{len(missing)} of {len(expected)} expected entries missing (e.g. {', '.join(missing[:3])})")
    if extra:
        problems.append(f"{len(extra)} unexpected (e.g. {', '.join(extra[:3])})")
    if misshapen:
        problems.append(f"{len(misshapen)} with another shape (e.g. {misshapen[0]})")
    if problems:
        raise CorrvosError(f"{where}: state dict does not fit the {type(model).__name__} network: {'; '.join(problems)}")


def read_checkpoint_metadata(uri: str) -> dict[str, Any]:
    """The metadata of checkpoint `uri` without building the network (a local file is memory-mapped, not read)."""
    payload = None
    if "://" not in uri or uri.startswith("file://"):
        path = Path(uri.removeprefix("file://"))
        if not path.is_file():
            raise CorrvosError(f"model {uri!r}: file not found")
        try:
            payload = torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
        except Exception:  # not a zip file (older format or garbage): read it whole, which names the problem
            payload = None
    if payload is None:
        payload = load_torch(uri, "model", CorrvosError)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CorrvosError(f"model {uri!r}: not a corrvos inference checkpoint (expected format {FORMAT})")
    return dict(payload.get("metadata", {}))


def stamp_checkpoint(uri: str, settings: ScoredSettings) -> None:
    """Rewrite checkpoint `uri` (atomically) with `settings` in its metadata; weights and model config unchanged."""
    payload = load_torch(uri, "model", CorrvosError)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CorrvosError(f"model {uri!r}: not a corrvos inference checkpoint (expected format {FORMAT})")
    payload["metadata"] = {**dict(payload.get("metadata", {})), SCORED_WITH: settings.to_metadata()}
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    atomic_write_bytes(uri, buffer.getvalue())
