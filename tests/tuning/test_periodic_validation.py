"""Validation J&F inside training: scored by rank 0, reported by every rank, logged to MLflow."""

import itertools
import json
from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient

from components.evaluation.evaluate import evaluate_videos
from components.evaluation.videos import dataset_videos
from components.model.checkpoint import load_inference_checkpoint
from pipelines.training.tracked import run_tracked_training_stage
from pipelines.training.worker import PeriodicValidation
from tests.training.conftest import RecordReports, tiny_config

pytestmark = pytest.mark.slow


def _score(model: torch.nn.Module, dataset: str, videos: int, inference, folder: Path, threads: int | None = None) -> float:
    """J&F of `model` on the first `videos` videos of `dataset`, scored here as the validation should score it."""
    first = list(itertools.islice(dataset_videos(dataset), videos))
    before = torch.get_num_threads()
    torch.set_num_threads(threads or before)  # as many threads as the worker had: the same sums, the same labels
    try:
        return evaluate_videos(model, first, folder, inference, "cpu", progress=False, reports=False).jf_mean
    finally:
        torch.set_num_threads(before)


def test_two_ddp_workers_report_the_same_val_jf(tmp_path, tiny_dataset, tiny_val_dataset, local_ray, monkeypatch):
    import pipelines.training.tracked as tracked
    from pipelines.training import stage

    reports = tmp_path / "reports.jsonl"
    validation = PeriodicValidation((tiny_val_dataset,), every=2, max_videos=2)

    def with_recorder(*args, **kwargs):  # a test-only Train callback sees every rank's reports
        return stage.run_training_stage(*args, **kwargs, callbacks=[RecordReports(str(reports))])

    monkeypatch.setattr(tracked, "run_training_stage", with_recorder)
    config = tiny_config(tmp_path, iterations=4, num_workers=2, batch_size=2, checkpoint_every=4, log_every=1)
    out = run_tracked_training_stage(config, "train", [tiny_dataset], str(tmp_path / "out"), validation=validation)

    lines = [json.loads(line) for line in reports.read_text().splitlines()]
    assert [[m["step"] for m in workers] for workers in lines] == [[2, 2], [4, 4]]  # a report at 2 without a checkpoint
    for workers in lines:
        assert workers[0]["val_jf"] == workers[1]["val_jf"]  # rank 1 reports what rank 0 scored
    # the last val_jf is the J&F of the weights written at that step, on the first 2 validation videos
    model, metadata = load_inference_checkpoint(out["model"])
    assert metadata["step"] == 4
    rescored = _score(model, tiny_val_dataset, 2, config.inference, tmp_path / "rescored", config.train.cpus_per_worker)
    assert lines[1][0]["val_jf"] == pytest.approx(rescored, abs=1e-6)
    # and it follows the weights as they train (measured: 0.026 at step 2, 0.0002 at step 4: four steps
    # at lr 1e-3 from scratch make no segmenter, tests/training/test_learning.py shows that training does)
    assert lines[0][0]["val_jf"] != lines[1][0]["val_jf"]
    history = MlflowClient(config.tracking.mlflow_uri).get_metric_history(out["mlflow_run_id"], "val_jf")
    assert sorted((m.step, m.value) for m in history) == [(2, lines[0][0]["val_jf"]), (4, lines[1][0]["val_jf"])]
    assert Path(out["model"]).exists()


def test_validation_scores_its_first_videos_and_keeps_the_model_in_train_mode(tiny_val_dataset, tmp_path):
    from components.config import config_from_dict, CorrvosConfig
    from components.model import STCNTrainWrapper
    from pipelines.training.worker import _Validator

    config = config_from_dict(CorrvosConfig, {"model": {"preset": "small"}})
    torch.manual_seed(0)  # untrained, but not blind: J&F 0.042 on the first two videos, 0.052 on all three
    model = STCNTrainWrapper(config.model).train()
    validator = _Validator(PeriodicValidation((tiny_val_dataset,), every=1, max_videos=2), config,
                           torch.device("cpu"), rank=0, world=1)
    assert [v.name for v in validator.videos] == sorted(v.name for v in validator.videos)[:2]
    score = validator.score(model)
    assert model.training and all(m.training for m in model.modules())
    assert score == _score(model, tiny_val_dataset, 2, config.inference, tmp_path / "two")  # what it says it scores
    assert score != _score(model, tiny_val_dataset, 3, config.inference, tmp_path / "three")  # and the third would move it
