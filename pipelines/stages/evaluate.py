"""Stage `evaluate`: propagate the trained model through the validation videos; J&F, FPS, reports."""

from __future__ import annotations

import itertools
import tempfile
from pathlib import Path

import fsspec
import torch

from components.config import CorrvosConfig
from components.evaluation.evaluate import evaluate_videos
from components.evaluation.videos import dataset_videos
from components.model.checkpoint import load_inference_checkpoint
from pipelines.stages.context import StageContext, datasets_with_role


def run_evaluate(config: CorrvosConfig, context: StageContext) -> dict[str, str]:
    """Scores and predictions under the stage folder; J&F (global and per sequence) and reports to MLflow."""
    model_uri = context.inputs["train"]["model"]
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model, _ = load_inference_checkpoint(model_uri, device)
    uris = datasets_with_role(config, context.inputs["ingest"], "val")
    videos = itertools.chain.from_iterable(dataset_videos(u, storage_options=config.storage.options) for u in uris)
    if config.evaluate.max_videos is not None:
        videos = itertools.islice(videos, config.evaluate.max_videos)
    local = "://" not in context.out or context.out.startswith("file://")
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(context.out.removeprefix("file://")) if local else Path(scratch)
        run = evaluate_videos(model, videos, folder, config.inference, device, progress=True)
        _log(run, config, context)
        if not local:
            fs, path = fsspec.core.url_to_fs(context.out, **config.storage.options)
            fs.put(str(folder), path, recursive=True)
    return {
        "scores": f"{context.out}/scores.json",
        "predictions": f"{context.out}/predictions",
        "jf": repr(float(run.jf_mean)),
        "model": model_uri,
    }


def _log(run, config: CorrvosConfig, context: StageContext) -> None:
    logger = context.logger
    metrics = {"jf": run.jf_mean, "fps": run.fps}
    for key, value in run.result.global_metrics().items():
        metrics[key.replace("&", "_").replace("-", "_").lower()] = value  # J&F-Mean -> j_f_mean
    for sequence in run.result.sequences:
        metrics[f"sequence.{sequence.name}.jf"] = sequence.jf_mean
    logger.log_metrics(metrics, step=0)
    logger.log_file(run.scores_path, "evaluation")
    charts = [p for p in run.report_paths if p.suffix == ".png" and not p.name.endswith("_strip.png")]
    strips = [p for p in run.report_paths if p.name.endswith("_strip.png")][: config.evaluate.overlays]
    gifs = [p for p in run.report_paths if p.suffix == ".gif"][: config.evaluate.overlays]
    for path in charts + strips + gifs:
        logger.log_file(path, "evaluation/report")
