"""Stage `evaluate`: propagate the trained model through the validation videos; J&F, FPS, reports."""

from __future__ import annotations

import itertools
import tempfile
from pathlib import Path

import fsspec
import torch

from components.config import CorrvosConfig
from components.evaluation.evaluate import evaluate_videos
from components.evaluation.reports import plot_jf_and_probe
from components.evaluation.videos import dataset_videos
from components.model.checkpoint import load_inference_checkpoint
from components.probe import probe_videos
from pipelines.stages.context import StageContext, datasets_with_role
from pipelines.training.stage import dataset_version


def run_evaluate(config: CorrvosConfig, context: StageContext) -> dict[str, str]:
    """Scores and predictions under the stage folder; J&F (global and per sequence) and reports to MLflow."""
    model_uri = context.inputs["train"]["model"]
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model, _ = load_inference_checkpoint(model_uri, device)
    uris = datasets_with_role(config, context.inputs["ingest"], "val")
    local = "://" not in context.out or context.out.startswith("file://")
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(context.out.removeprefix("file://")) if local else Path(scratch)
        run = evaluate_videos(model, _videos(config, uris), folder, config.inference, device,
                              progress=context.progress)
        _log(run, config, context)
        if config.evaluate.probe:
            probe = probe_videos(model, _videos(config, uris), folder / "probe", config.probe, device,
                                 progress=context.progress)
            _log_probe(run, probe, folder, context)
        if not local:
            _upload(folder, context.out, config.storage.options)
    return {
        "scores": f"{context.out}/scores.json",
        "predictions": f"{context.out}/predictions",
        "jf": repr(float(run.jf_mean)),
        "held_out_version": _held_out_version(config, uris),
        **({"probe_scores": f"{context.out}/probe/scores.json"} if config.evaluate.probe else {}),
        "model": model_uri,
    }


def _held_out_version(config: CorrvosConfig, uris: list[str]) -> str:
    """What the J&F was measured on: the held-out datasets' content version, and the video cap if any."""
    version = dataset_version(uris, config.storage.options)
    cap = config.evaluate.max_videos
    return version if cap is None else f"{version}/first-{cap}"


def _upload(folder: Path, uri: str, storage_options: dict) -> None:
    """Every file under `folder` to the same relative path under `uri` (no nesting surprises from `put`)."""
    fs, root = fsspec.core.url_to_fs(uri, **storage_options)
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        fs.put_file(str(path), f"{root.rstrip('/')}/{path.relative_to(folder).as_posix()}")


def _videos(config: CorrvosConfig, uris: list[str]):
    videos = itertools.chain.from_iterable(dataset_videos(u, storage_options=config.storage.options) for u in uris)
    if config.evaluate.max_videos is not None:
        videos = itertools.islice(videos, config.evaluate.max_videos)
    return videos


def _log_probe(run, probe, folder: Path, context: StageContext) -> None:
    """probe_jf, corr_acc_at_r (global and per sequence) beside J&F, and a chart of both per sequence."""
    metrics = dict(probe.metrics())
    for name, value in probe.sequence_jf().items():
        metrics[f"sequence.{name}.probe_jf"] = value
    context.logger.log_metrics(metrics, step=0)
    jf = {s.name: s.jf_mean for s in run.result.sequences}
    chart = plot_jf_and_probe(jf, probe.sequence_jf(), folder / "report" / "jf_vs_probe.png")
    context.logger.log_file(chart, "evaluation/report")
    context.logger.log_file(probe.scores_path, "evaluation/probe")


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
