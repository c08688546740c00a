"""Validation J&F inside training: scored by rank 0, reported by every rank, logged to MLflow."""

import json
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from ray.train import UserCallback

from pipelines.training.tracked import run_tracked_training_stage
from pipelines.training.worker import PeriodicValidation
from tests.training.conftest import tiny_config

pytestmark = pytest.mark.slow


class RecordReports(UserCallback):
    """Writes every worker's reported metrics, one JSON line per report, where the test can read them."""

    def __init__(self, path: str) -> None:
        self.path = path

    def after_report(self, run_context, metrics, checkpoint) -> None:
        with open(self.path, "a") as handle:
            handle.write(json.dumps(metrics) + "\n")


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
        assert 0.0 <= workers[0]["val_jf"] <= 1.0
    history = MlflowClient(config.tracking.mlflow_uri).get_metric_history(out["mlflow_run_id"], "val_jf")
    assert sorted((m.step, m.value) for m in history) == [(2, lines[0][0]["val_jf"]), (4, lines[1][0]["val_jf"])]
    assert Path(out["model"]).exists()


def test_validation_keeps_the_model_in_train_mode(tiny_val_dataset):
    import torch

    from components.config import config_from_dict, CorrvosConfig
    from components.model import STCNTrainWrapper
    from pipelines.training.worker import _Validator

    config = config_from_dict(CorrvosConfig, {"model": {"preset": "small"}})
    model = STCNTrainWrapper(config.model).train()
    validator = _Validator(PeriodicValidation((tiny_val_dataset,), every=1, max_videos=2), config,
                           torch.device("cpu"), rank=0, world=1)
    assert [v.name for v in validator.videos] == sorted(v.name for v in validator.videos)[:2]
    score = validator.score(model)
    assert 0.0 <= score <= 1.0
    assert model.training and all(m.training for m in model.modules())
