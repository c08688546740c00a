"""`corrvos predict`: segment a video (a folder of frames) from its first masks with a trained model.

The inference settings are the ones stored with the model (a registered version carries those its
J&F was measured with), else the defaults; `--set inference.KEY=VALUE` overrides single keys on top.
`--set inference.preset=official` replaces the stored settings with the official evaluation's (other
`--set` keys still apply on top). One line says which settings are in use and where they came from.
`--save-probabilities DIR` also writes each frame's soft output to DIR/<frame stem>.npy.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the CLI imports every command at start-up: torch only when this one runs
    import torch
    from torch import nn

    from components.config import InferenceConfig
    from pipelines.registry import ResolvedModel

NAME = "predict"
HELP = "propagate first-frame masks through a folder of frames; writes indexed PNGs in DAVIS layout"


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """`--model REF` and `--tracking-uri`: what predict and probe both take to find a model."""
    parser.add_argument("--model", required=True, metavar="REF",
                        help="inference checkpoint: a path, an fsspec URI, or a registered model "
                             "(models:/NAME/VERSION or models:/NAME@ALIAS, e.g. models:/corrvos-stcn@champion)")
    parser.add_argument("--tracking-uri", metavar="URI",
                        help="MLflow tracking URI for models:/ refs (default: $MLFLOW_TRACKING_URI, "
                             "else sqlite:///runs/mlflow.db)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser)
    parser.add_argument("--frames", required=True, metavar="DIR", type=Path,
                        help="folder of frames (.jpg/.jpeg/.png), in name order")
    parser.add_argument("--masks", required=True, metavar="PATH", type=Path,
                        help="the first frame's mask PNG, or a folder of mask PNGs named like the frames they "
                             "belong to (each object's first mask is used)")
    parser.add_argument("--out", required=True, metavar="DIR", type=Path,
                        help="writes DIR/<name>/<frame>.png (name: the frames folder's, or --name)")
    parser.add_argument("--name", help="sequence folder name under --out (default: the frames folder's name)")
    parser.add_argument("--overlay", action="store_true",
                        help="also write DIR/<name>_overlay.gif and DIR/<name>_overlay.mp4 (every frame)")
    parser.add_argument("--save-probabilities", metavar="DIR", type=Path,
                        help="also write DIR/<frame stem>.npy per frame: float16, (1 + objects, H, W) at the "
                             "frame's size, channel 0 background, then the objects in ascending id")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="inference.KEY=VALUE",
                        help="override one inference setting on top of those stored with the model (a registered "
                             "version's are those its J&F was measured with), e.g. inference.top_k=50 (repeatable); "
                             "inference.preset=official: the official STCN/XMem evaluation's settings")
    parser.add_argument("--device", help="torch device (default: cuda when available, else cpu)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing DIR/<name>")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    import torch

    from components.evaluation.predict import plan_prediction, run_prediction

    inference_config(args.overrides)  # a bad --set fails before anything is read
    job = plan_prediction(args.frames, args.masks, args.out, name=args.name, overlay_gif=args.overlay,
                          overwrite=args.overwrite, save_probabilities=args.save_probabilities)
    # every input checked before the model is loaded
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model, resolved = load_resolved(args.model, args.tracking_uri, device)
    config = inference_config(args.overrides, resolved.settings.inference)
    stored = resolved.settings.inference is not None and not names_preset("inference", args.overrides)
    print(settings_line("inference", config, resolved, stored, args.overrides))
    result = run_prediction(model, job, config, device, progress=not args.no_progress)
    ids = ", ".join(str(i) for i in result.object_ids)
    print(f"wrote {result.frame_count} frames to {result.sequence_dir} (objects {ids}); "
          f"{result.fps:.2f} frames/s on {device} (model time, I/O excluded)")
    if result.overlay_path is not None:
        print(f"wrote {result.overlay_path} and {result.overlay_video}")
    if result.probabilities_dir is not None:
        print(f"wrote {result.frame_count} probability files (.npy, float16) to {result.probabilities_dir}")
    return 0


def inference_config(overrides: list[str], base: InferenceConfig | None = None) -> InferenceConfig:
    """`base` (default: InferenceConfig()) with `inference.key=value` overrides (strict: unknown keys are errors)."""
    from components.config import InferenceConfig

    return section_config(InferenceConfig, "inference", "predict", overrides, base)


def section_config(cls: type, section: str, command: str, overrides: list[str], base: object | None = None):
    """`base` (default: `cls()`) with `section.key=value` overrides applied key by key; other sections are errors.

    An override of `section.preset` starts from that preset instead of `base`: the stored settings name
    every key, which would otherwise override every value the preset sets.
    """
    from components.config import apply_overrides, config_from_dict, config_to_dict
    from components.errors import ConfigError

    start = config_to_dict(base) if base is not None and not names_preset(section, overrides) else {}
    data = apply_overrides({section: start}, overrides)
    other = sorted(set(data) - {section})
    if other:
        raise ConfigError(f"--set {other[0]}...: {command} only takes {section}.* settings")
    if not isinstance(data[section], dict):
        raise ConfigError(f"--set {section}=...: name a key, e.g. {section}.top_k=20")
    return config_from_dict(cls, data[section], section)


def names_preset(section: str, overrides: list[str]) -> bool:
    """Whether an override picks `section.preset` (which then replaces the stored settings)."""
    return any(item.split("=", 1)[0].strip() == f"{section}.preset" for item in overrides)


def settings_line(section: str, config: object, resolved: ResolvedModel, stored: bool, overrides: list[str]) -> str:
    """One line: which settings are in use (those off the defaults) and where they came from."""
    from components.config import config_to_dict

    if stored:
        source = resolved.source
    elif resolved.version_uri:
        source = f"defaults ({resolved.version_uri} records none)"
    else:
        source = "defaults"
    if overrides:
        source += ", with --set " + " ".join(overrides)
    default = _flat(config_to_dict(type(config)()))
    chosen = {k: v for k, v in _flat(config_to_dict(config)).items() if v != default.get(k, object())}
    shown = ", ".join(f"{k}={v}" for k, v in chosen.items()) or "all default"
    return f"{section} settings: {source} ({shown})"


def _flat(data: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def load_resolved(ref: str, tracking_uri: str | None, device: torch.device) -> tuple[nn.Module, ResolvedModel]:
    """The network of `ref` (a `models:/` ref is downloaded once) and the settings stored in its checkpoint.

    The checkpoint is read once: the settings come from the metadata it was loaded with.
    """
    import os

    from components.model.checkpoint import ScoredSettings
    from pipelines.registry import ResolvedModel, locate_model
    from pipelines.tracking import resolve_tracking_uri

    uri = None
    if ref.startswith("models:/"):
        uri = resolve_tracking_uri(tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or "sqlite:///runs/mlflow.db")
    checkpoint, version_uri = locate_model(ref, uri)
    model, metadata = _load(checkpoint, device)
    return model, ResolvedModel(ref, checkpoint, version_uri, ScoredSettings.from_metadata(metadata, f"model {ref!r}"))


def model_path(ref: str, tracking_uri: str | None) -> str:
    """`ref` itself, or for a `models:/` ref the local checkpoint of that registered version (downloaded once)."""
    if not ref.startswith("models:/"):
        return ref
    import os

    from pipelines.registry import resolve_model_ref
    from pipelines.tracking import resolve_tracking_uri

    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or "sqlite:///runs/mlflow.db"
    return resolve_model_ref(ref, resolve_tracking_uri(uri))


def load_model(ref: str, device: torch.device) -> nn.Module:
    """The inference network of checkpoint `ref`; any failure is a CorrvosError naming `ref`."""
    return _load(ref, device)[0]


def _load(ref: str, device: torch.device) -> tuple[nn.Module, dict]:
    """(network, metadata) of checkpoint `ref`; any failure is a CorrvosError naming `ref`."""
    from components.errors import CorrvosError
    from components.model.checkpoint import load_inference_checkpoint

    try:
        return load_inference_checkpoint(ref, device)
    except CorrvosError:
        raise
    except (OSError, RuntimeError, KeyError, TypeError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CorrvosError(f"model {ref!r}: cannot load ({reason})") from None
