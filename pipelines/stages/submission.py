"""The evaluate stage's part for `predict-only` sets and DAVIS attributes.

A `predict-only` set has no public ground truth (YouTube-VOS / MOSE valid, DAVIS 2017 test-dev): the
stage propagates it, packs the upload archive its kind's benchmark expects (checked file by file) and
logs it to MLflow with its SHA-256; `register` tags the model version with the archives. A `test` set
with `attributes` (a DAVIS db_info.yml) also gets J&F per attribute.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from components.config import CorrvosConfig
from components.config.roles import PREDICT_ONLY_ROLE
from components.config.schema import DatasetSource
from components.evaluation.attributes import (
    AttributeScore,
    attribute_scores,
    plot_attribute_scores,
    read_db_info,
    write_attribute_scores,
)
from components.evaluation.evaluate import EvaluationRun
from components.evaluation.submission import benchmark_for, write_submission
from components.evaluation.videos import dataset_videos
from pipelines.stages.context import StageContext, named_datasets_with_role

SUBMISSIONS_OUTPUT = "submissions"  # evaluate output: JSON {set: {benchmark, archive, sha256, ...}}


def predict_only_sets(config: CorrvosConfig, context: StageContext, model: nn.Module, device: torch.device,
                      root: Path) -> dict[str, dict[str, Any]]:
    """Archive every predict-only set under <root>/<set>/, log it, and describe it for the stage outputs."""
    entries: dict[str, dict[str, Any]] = {}
    for source, uri in named_datasets_with_role(config, context.inputs["ingest"], PREDICT_ONLY_ROLE):
        videos = dataset_videos(uri, storage_options=config.storage.options)
        submission = write_submission(model, videos, root / source.name, benchmark_for(source.kind),
                                      config.inference, device, all_frames=source.all_frames,
                                      progress=context.progress)
        artifacts = f"submission/{source.name}"
        context.logger.log_file(submission.archive, artifacts)
        context.logger.log_file(submission.archive.with_name(f"{submission.archive.name}.json"), artifacts)
        context.logger.set_tags({f"corrvos.submission.{source.name}.sha256": submission.sha256,
                                 f"corrvos.submission.{source.name}.benchmark": submission.benchmark.name})
        context.logger.log_metrics({f"predict.{source.name}.videos": len(submission.expected),
                                    f"predict.{source.name}.files": submission.files}, step=0)
        entries[source.name] = {
            "benchmark": submission.benchmark.name,
            "archive": f"{context.out}/{source.name}/{submission.archive.name}",
            "artifact": f"runs:/{context.run_id}/{artifacts}/{submission.archive.name}",
            "sha256": submission.sha256,
            "all_frames": submission.all_frames,
            "videos": len(submission.expected),
            "files": submission.files,
        }
    return entries


def attribute_table(source: DatasetSource, run: EvaluationRun, storage_options: dict) -> dict[str, AttributeScore]:
    """J&F per attribute of a test set with `attributes`, written to attributes.json and report/ (else empty)."""
    if source.attributes is None:
        return {}
    table = attribute_scores(run.result, read_db_info(source.attributes, storage_options))
    write_attribute_scores(table, run.out_dir / "attributes.json")
    plot_attribute_scores(table, run.jf_mean, run.out_dir / "report" / "jf_per_attribute.png")
    return table


def log_attribute_table(context: StageContext, name: str, table: dict[str, AttributeScore], primary: bool,
                        out_dir: Path) -> None:
    """attribute.<A>.jf (primary set) and test.<set>.attribute.<A>.jf / .j / .f, plus the JSON and chart."""
    if not table:
        return
    metrics = {}
    for attribute, score in table.items():
        for key, value in (("jf", score.jf_mean), ("j", score.j_mean), ("f", score.f_mean)):
            metrics[f"test.{name}.attribute.{attribute}.{key}"] = value
        if primary:
            metrics[f"attribute.{attribute}.jf"] = score.jf_mean
    context.logger.log_metrics(metrics, step=0)
    context.logger.log_file(out_dir / "attributes.json", f"evaluation/{name}")
    context.logger.log_file(out_dir / "report" / "jf_per_attribute.png", f"evaluation/{name}/report")


def archive_tags(evaluate: dict[str, str]) -> dict[str, str]:
    """Model-version tags naming the archives the evaluate stage packed (none when it packed none)."""
    entries = json.loads(evaluate.get(SUBMISSIONS_OUTPUT, "{}"))
    if not entries:
        return {}
    tags = {"corrvos.archives": ",".join(f"{name}:{entry['benchmark']}" for name, entry in entries.items())}
    for name, entry in entries.items():
        tags[f"corrvos.archive.{name}.sha256"] = entry["sha256"]
        tags[f"corrvos.archive.{name}.artifact"] = entry["artifact"]
    return tags
