"""Training stages on a real local Ray cluster: fault recovery, stage hand-over, MLflow records, DDP."""

import dataclasses
from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient

from components.model.checkpoint import load_inference_checkpoint
from pipelines.training.tracked import run_tracked_training_stage
from tests.training.conftest import tiny_config

pytestmark = pytest.mark.slow


def test_injected_fault_is_recovered_and_train_starts_from_pretrain(tmp_path, tiny_dataset, local_ray):
    config = tiny_config(tmp_path, fail_at_step=3)
    pre = run_tracked_training_stage(config, "pretrain", [tiny_dataset], str(tmp_path / "pretrain"))
    client = MlflowClient(config.tracking.mlflow_uri)
    run_id = pre["mlflow_run_id"]
    assert (tmp_path / "pretrain" / "fault-injected").exists()  # the fault really happened
    resumed = client.get_metric_history(run_id, "resumed_from_step")
    assert [m.value for m in resumed] == [2.0]  # recovered from the checkpoint at step 2, not from 0
    steps = [m.step for m in sorted(client.get_metric_history(run_id, "total"), key=lambda m: m.timestamp)]
    assert max(steps) == 6 and steps[-1] == 6
    after_fault = steps[steps.index(max(steps[:3])) + 1:]
    assert min(after_fault) >= 2, steps  # the curve continues, it does not restart at step 1
    model, metadata = load_inference_checkpoint(pre["model"])
    assert metadata["step"] == 6 and model.config.single_object
    artifacts = {a.path for a in client.list_artifacts(run_id)}
    assert {"config", "model", "previews", "loss_curves.png"} <= artifacts
    params = client.get_run(run_id).data.params
    assert "pretrain.iterations" in params and not any(k.startswith("storage.") for k in params)
    assert client.get_run(run_id).data.tags["corrvos.dataset_version"]

    train = run_tracked_training_stage(dataclasses.replace(config, train=dataclasses.replace(config.train, fail_at_step=None, iterations=2)),
                                       "train", [tiny_dataset], str(tmp_path / "train"), init_weights=pre["model"])
    trained, _ = load_inference_checkpoint(train["model"])
    conv1 = trained.value_encoder.trunk.conv1.weight
    assert conv1.shape[1] == 5  # the "other objects" channel was added
    assert not torch.equal(conv1[:, :4], model.value_encoder.trunk.conv1.weight)  # and it trained on


def test_pretrain_samples_static_pseudo_videos_with_one_object():
    from pipelines.training.worker import _data_config

    config = tiny_config(Path("."))
    pretrain = _data_config(config.data, {"stage": "pretrain"})
    assert pretrain.sampler.mode == "static" and pretrain.sampler.max_objects == 1
    assert _data_config(config.data, {"stage": "train"}) == config.data


def test_two_ddp_workers_train_with_baseline_and_released_weights(tmp_path, tiny_dataset, local_ray):
    for preset in ("baseline", "released"):
        config = tiny_config(tmp_path / preset, iterations=2, num_workers=2, batch_size=2, checkpoint_every=2)
        config = dataclasses.replace(config, loss=dataclasses.replace(config.loss, preset=preset,
                                     **({"pcl_weight": 0.0, "cross_view_weight": 0.0} if preset == "baseline" else {})))
        out = run_tracked_training_stage(config, "train", [tiny_dataset], str(tmp_path / preset / "out"))
        model, metadata = load_inference_checkpoint(out["model"])
        assert metadata["step"] == 2
