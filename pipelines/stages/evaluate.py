"""Stage `evaluate`: propagate the trained model through each test set; J&F, its floor, FPS, reports.

Only datasets with role `test` are scored here (never `val`, which steers). Each test set is scored
on its own, beside the copy-first-mask floor on the same videos; the first test set in config order
is the primary one, whose J&F is registered and compared by `promote`. A test set with `attributes`
also gets J&F per DAVIS attribute; `predict-only` sets become benchmark upload archives
(`pipelines/stages/submission.py`).
"""

from __future__ import annotations

import itertools
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from components.config import CorrvosConfig, config_to_dict
from components.config.roles import PREDICT_ONLY_ROLE, REPORTING_ROLE
from components.evaluation.evaluate import EvaluationRun, evaluate_videos
from components.evaluation.floor import copy_first_mask_floor
from components.evaluation.reports import plot_jf_and_probe
from components.evaluation.videos import dataset_videos
from components.model.checkpoint import load_inference_checkpoint
from components.probe import ProbeRun, probe_videos
from pipelines.dataset_inputs import log_dataset_inputs
from pipelines.stages.context import StageContext, named_datasets_with_role
from pipelines.stages.submission import SUBMISSIONS_OUTPUT, attribute_table, log_attribute_table, predict_only_sets
from pipelines.training.stage import dataset_version
from components.storage import open_fs


@dataclass(frozen=True)
class ScoredTestSet:
    """One test set's model run, its floor and probe, and the version of what was scored."""

    name: str
    run: EvaluationRun
    floor_jf: float
    probe: ProbeRun | None
    version: str


def run_evaluate(config: CorrvosConfig, context: StageContext) -> dict[str, str]:
    """Scores and predictions per test set under the stage folder; J&F, floors and reports to MLflow."""
    model_uri = context.inputs["train"]["model"]
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model, _ = load_inference_checkpoint(model_uri, device)
    test_sets = named_datasets_with_role(config, context.inputs["ingest"], REPORTING_ROLE)
    if not test_sets:
        raise ValueError(f"pipeline.sources: no ingested dataset has role {REPORTING_ROLE!r}")
    predict_only = named_datasets_with_role(config, context.inputs["ingest"], PREDICT_ONLY_ROLE)
    log_dataset_inputs(context.tracking_uri, context.run_id,
                       [(uri, REPORTING_ROLE) for _, uri in test_sets] + [(uri, PREDICT_ONLY_ROLE) for _, uri in predict_only],
                       config.storage.options)
    local = "://" not in context.out or context.out.startswith("file://")
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(context.out.removeprefix("file://")) if local else Path(scratch)
        results = []
        for index, (source, uri) in enumerate(test_sets):
            folder = root / source.name
            run = evaluate_videos(model, _videos(config, uri), folder, config.inference, device,
                                  progress=context.progress, mp4=source.kind != "synthetic")
            floor = copy_first_mask_floor(_videos(config, uri)).global_metrics()["J&F-Mean"]
            probe = None
            if config.evaluate.probe:
                probe = probe_videos(model, _videos(config, uri), folder / "probe", config.probe, device,
                                     progress=context.progress)
            result = ScoredTestSet(source.name, run, floor, probe, _held_out_version(config, uri))
            _log(result, config, context, primary=index == 0)
            log_attribute_table(context, source.name, attribute_table(source, run, config.storage.options),
                                primary=index == 0, out_dir=run.out_dir)
            results.append(result)
        submissions = predict_only_sets(config, context, model, device, root)
        if not local:
            _upload(root, context.out, config.storage.options)
    primary = results[0]
    return {
        "scores": f"{context.out}/{primary.name}/scores.json",
        "predictions": f"{context.out}/{primary.name}/predictions",
        "jf": repr(float(primary.run.jf_mean)),
        "held_out_version": primary.version,
        "primary_test_set": primary.name,
        "test_sets": json.dumps({r.name: _entry(r, context.out) for r in results}),
        **({SUBMISSIONS_OUTPUT: json.dumps(submissions)} if submissions else {}),
        # the settings the J&F was measured with: the registry serves exactly these
        "inference_config": json.dumps(config_to_dict(config.inference), sort_keys=True),
        "probe_config": json.dumps(config_to_dict(config.probe), sort_keys=True),
        **({"probe_scores": f"{context.out}/{primary.name}/probe/scores.json"} if config.evaluate.probe else {}),
        "model": model_uri,
    }


def _entry(result: ScoredTestSet, out: str) -> dict:
    """A test set as the outputs (and the summary table) show it."""
    return {"jf": result.run.jf_mean, "floor_jf": result.floor_jf, "videos": len(result.run.result.sequences),
            "scores": f"{out}/{result.name}/scores.json", "version": result.version}


def _held_out_version(config: CorrvosConfig, uri: str) -> str:
    """What the J&F was measured on: the test set's content version, and the video cap if any."""
    version = dataset_version([uri], config.storage.options)
    cap = config.evaluate.max_videos
    return version if cap is None else f"{version}/first-{cap}"


def _upload(folder: Path, uri: str, storage_options: dict) -> None:
    """Every file under `folder` to the same relative path under `uri` (no nesting surprises from `put`)."""
    fs, root = open_fs(uri, storage_options)
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        fs.put_file(str(path), f"{root.rstrip('/')}/{path.relative_to(folder).as_posix()}")


def _videos(config: CorrvosConfig, uri: str):
    videos = dataset_videos(uri, storage_options=config.storage.options)
    if config.evaluate.max_videos is not None:
        videos = itertools.islice(videos, config.evaluate.max_videos)
    return videos


def _log(result: ScoredTestSet, config: CorrvosConfig, context: StageContext, primary: bool) -> None:
    """The primary set under the plain names (jf, sequence.<seq>.jf, probe_jf); every set under test.<set>.*.

    MLflow artifacts go to evaluation/<set>/.
    """
    logger, run, prefix = context.logger, result.run, f"test.{result.name}."
    metrics = {f"{prefix}jf": run.jf_mean, f"{prefix}floor_jf": result.floor_jf, f"{prefix}fps": run.fps}
    per_set = {"jf": run.jf_mean, "fps": run.fps}
    for key, value in run.result.global_metrics().items():
        per_set[key.replace("&", "_").replace("-", "_").lower()] = value  # J&F-Mean -> j_f_mean
    for sequence in run.result.sequences:
        per_set[f"sequence.{sequence.name}.jf"] = sequence.jf_mean
    if result.probe is not None:
        per_set.update(result.probe.metrics())
        for name, value in result.probe.sequence_jf().items():
            per_set[f"sequence.{name}.probe_jf"] = value
    metrics.update({f"{prefix}{k}": v for k, v in per_set.items() if not k.startswith(("jf", "fps"))})
    if primary:
        metrics.update(per_set)
        metrics["floor_jf"] = result.floor_jf
    logger.log_metrics(metrics, step=0)
    artifacts = f"evaluation/{result.name}"
    logger.log_file(run.scores_path, artifacts)
    charts = [p for p in run.report_paths if p.suffix == ".png" and not p.name.endswith("_strip.png")]
    worst = sorted(run.result.sequences, key=lambda s: s.jf_mean)[: config.evaluate.overlays]
    shown = {f"{s.name}_{kind}" for s in worst for kind in ("strip.png", "overlay.gif", "overlay.mp4")}
    for path in charts + [p for p in run.report_paths if p.name in shown]:
        logger.log_file(path, f"{artifacts}/report")
    if result.probe is not None:
        jf = {s.name: s.jf_mean for s in run.result.sequences}
        chart = plot_jf_and_probe(jf, result.probe.sequence_jf(), run.out_dir / "report" / "jf_vs_probe.png")
        logger.log_file(chart, f"{artifacts}/report")
        logger.log_file(result.probe.scores_path, f"{artifacts}/probe")
