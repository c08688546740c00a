"""`corrvos predict`: segment a video (a folder of frames) from its first masks with a trained model."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the CLI imports every command at start-up: torch only when this one runs
    import torch
    from torch import nn

    from components.config import InferenceConfig

NAME = "predict"
HELP = "propagate first-frame masks through a folder of frames; writes indexed PNGs in DAVIS layout"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, metavar="REF",
                        help="inference checkpoint: a path, an fsspec URI, or a registered model "
                             "(models:/NAME/VERSION or models:/NAME@ALIAS, e.g. models:/corrvos-stcn@champion)")
    parser.add_argument("--tracking-uri", metavar="URI",
                        help="MLflow tracking URI for models:/ refs (default: $MLFLOW_TRACKING_URI, "
                             "else sqlite:///runs/mlflow.db)")
    parser.add_argument("--frames", required=True, metavar="DIR", type=Path,
                        help="folder of frames (.jpg/.jpeg/.png), in name order")
    parser.add_argument("--masks", required=True, metavar="PATH", type=Path,
                        help="the first frame's mask PNG, or a folder of mask PNGs named like the frames they "
                             "belong to (each object's first mask is used)")
    parser.add_argument("--out", required=True, metavar="DIR", type=Path,
                        help="writes DIR/<name>/<frame>.png (name: the frames folder's, or --name)")
    parser.add_argument("--name", help="sequence folder name under --out (default: the frames folder's name)")
    parser.add_argument("--overlay", action="store_true", help="also write DIR/<name>_overlay.gif")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="inference.KEY=VALUE",
                        help="override an inference setting, e.g. inference.top_k=50 (repeatable)")
    parser.add_argument("--device", help="torch device (default: cuda when available, else cpu)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing DIR/<name>")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    import torch

    from components.evaluation.predict import plan_prediction, run_prediction

    config = inference_config(args.overrides)
    job = plan_prediction(args.frames, args.masks, args.out, name=args.name, overlay_gif=args.overlay,
                          overwrite=args.overwrite)  # every input checked before the model is loaded
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model = load_model(model_path(args.model, args.tracking_uri), device)
    result = run_prediction(model, job, config, device, progress=not args.no_progress)
    ids = ", ".join(str(i) for i in result.object_ids)
    print(f"wrote {result.frame_count} frames to {result.sequence_dir} (objects {ids}); "
          f"{result.fps:.2f} frames/s on {device} (model time, I/O excluded)")
    if result.overlay_path is not None:
        print(f"wrote {result.overlay_path}")
    return 0


def inference_config(overrides: list[str]) -> InferenceConfig:
    """InferenceConfig from `inference.key=value` overrides (strict: unknown keys and sections are errors)."""
    from components.config import InferenceConfig, apply_overrides, config_from_dict
    from components.errors import ConfigError

    data = apply_overrides({"inference": {}}, overrides)
    other = sorted(set(data) - {"inference"})
    if other:
        raise ConfigError(f"--set {other[0]}...: predict only takes inference.* settings")
    return config_from_dict(InferenceConfig, data["inference"], "inference")


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
    from components.errors import CorrvosError
    from components.model.checkpoint import load_inference_checkpoint

    try:
        model, _ = load_inference_checkpoint(ref, device)
    except CorrvosError:
        raise
    except (OSError, RuntimeError, KeyError, TypeError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CorrvosError(f"model {ref!r}: cannot load ({reason})") from None
    return model
