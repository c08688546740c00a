"""Training stages on a real local Ray cluster: fault recovery, stage hand-over, MLflow records, DDP."""

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient

from components.config import ModelConfig, config_from_dict
from components.model import build_train_wrapper
from components.model.checkpoint import load_inference_checkpoint
from pipelines.training.tracked import run_tracked_training_stage
from pipelines.training.worker import weights_digest
from tests.training.conftest import RecordReports, tiny_config


@pytest.fixture
def recorded_reports(tmp_path, monkeypatch) -> Path:
    """A JSONL file receiving every rank's `ray.train.report` metrics from the stages the test runs."""
    import pipelines.training.tracked as tracked
    from pipelines.training import stage

    reports = tmp_path / "reports.jsonl"

    def with_recorder(*args, **kwargs):  # a test-only Train callback sees every rank's reports
        return stage.run_training_stage(*args, **kwargs, callbacks=[RecordReports(str(reports))])

    monkeypatch.setattr(tracked, "run_training_stage", with_recorder)
    return reports


@pytest.mark.slow
def test_injected_fault_is_recovered_and_train_starts_from_pretrain(tmp_path, tiny_dataset, local_ray,
                                                                     recorded_reports):
    """Pretrain recovers from an injected fault; train starts from its weights on two DDP ranks with the
    `baseline` objective (head g frozen, so DDP has unused parameters to skip) and both ranks stay equal."""
    config = tiny_config(tmp_path, fail_at_step=3)
    drop_at_4 = dataclasses.replace(config.pretrain, lr_drop_unit="iterations", lr_drop_at=(4.0,))
    config = dataclasses.replace(config, pretrain=drop_at_4)
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
    lr = {m.step: m.value for m in client.get_metric_history(run_id, "lr")}  # step k: 0-based iteration k - 1
    assert lr == pytest.approx({1: 1e-3, 2: 1e-3, 3: 1e-3, 4: 1e-3, 5: 1e-4, 6: 1e-4})  # x0.1 from iteration 4
    model, metadata = load_inference_checkpoint(pre["model"])
    assert metadata["step"] == 6 and model.config.single_object
    artifacts = {a.path for a in client.list_artifacts(run_id)}
    assert {"config", "model", "previews", "loss_curves.png"} <= artifacts
    params = client.get_run(run_id).data.params
    assert "pretrain.iterations" in params and not any(k.startswith("storage.") for k in params)
    assert client.get_run(run_id).data.tags["corrvos.dataset_version"]
    timing = {key: client.get_metric_history(run_id, key) for key in ("data_wait_s", "compute_s", "data_wait_share")}
    assert all(len(history) >= 2 for history in timing.values()), timing  # logged with every window
    assert all(m.value > 0 for m in timing["compute_s"]) and all(m.value >= 0 for m in timing["data_wait_s"])
    assert all(0 <= m.value < 1 for m in timing["data_wait_share"])
    caches = {key: client.get_metric_history(run_id, key)
              for key in ("encoded_cache_hit_rate", "decoded_cache_hit_rate", "decoded_cache_on")}
    assert all(len(history) == len(timing["data_wait_s"]) for history in caches.values()), caches  # same windows
    assert all(0 <= m.value <= 1 for m in caches["encoded_cache_hit_rate"] + caches["decoded_cache_hit_rate"])
    assert {m.value for m in caches["decoded_cache_on"]} <= {0.0, 1.0}

    recorded_reports.unlink(missing_ok=True)
    baseline = dataclasses.replace(config.loss, preset="baseline", pcl_weight=0.0, cross_view_weight=0.0)
    two_ranks = dataclasses.replace(config.train, fail_at_step=None, iterations=2, num_workers=2, checkpoint_every=1)
    train = run_tracked_training_stage(dataclasses.replace(config, train=two_ranks, loss=baseline),
                                       "train", [tiny_dataset], str(tmp_path / "train"), init_weights=pre["model"])
    trained, _ = load_inference_checkpoint(train["model"])
    conv1 = trained.value_encoder.trunk.conv1.weight
    assert conv1.shape[1] == 5  # the "other objects" channel was added
    assert not torch.equal(conv1[:, :4], model.value_encoder.trunk.conv1.weight)  # and it trained on
    reports = [json.loads(line) for line in recorded_reports.read_text().splitlines()]
    assert [[m["step"] for m in workers] for workers in reports] == [[1, 1], [2, 2]]
    for workers in reports:  # DDP averaged the gradients: both ranks hold the same weights after each step
        assert workers[0]["weights_digest"] == workers[1]["weights_digest"]
    assert reports[0][0]["weights_digest"] != reports[1][0]["weights_digest"]  # and they moved
    assert reports[-1][0]["total"] != reports[-1][1]["total"]  # on different clips


def test_pretrain_samples_static_pseudo_videos_with_one_object():
    from pipelines.training.worker import _data_config

    config = tiny_config(Path("."))
    pretrain = _data_config(config.data, {"stage": "pretrain"})
    assert pretrain.sampler.mode == "static" and pretrain.sampler.max_objects == 1
    assert _data_config(config.data, {"stage": "train"}) == config.data


def test_weights_digest_tells_weights_apart():
    config = config_from_dict(ModelConfig, {"preset": "small"})
    torch.manual_seed(0)
    model = build_train_wrapper(config)
    torch.manual_seed(0)
    same = build_train_wrapper(config)
    assert weights_digest(model) == weights_digest(same) == int(weights_digest(model))  # an exact float
    assert weights_digest(model, buffers=True) == weights_digest(same, buffers=True)
    with torch.no_grad():
        first = next(same.parameters()).view(-1)
        first[0] = torch.nextafter(first[0], torch.tensor(1.0))  # one element, one ulp
    assert weights_digest(model) != weights_digest(same)
    assert weights_digest(model, buffers=True) == weights_digest(same, buffers=True)  # parameters only
    next(same.buffers()).add_(1)
    assert weights_digest(model, buffers=True) != weights_digest(same, buffers=True)


@pytest.mark.slow
def test_two_ddp_workers_hold_identical_weights_after_training(tmp_path, tiny_dataset, local_ray, recorded_reports):
    """After N steps every rank holds the same parameters, and not the initial ones, although each rank
    trained on its own clips: DDP averaged the gradients. With `released` weights here; `baseline` ones
    (head g frozen) in the train part of the injected-fault test."""
    config = tiny_config(tmp_path, iterations=4, num_workers=2, batch_size=2, checkpoint_every=2)
    config = dataclasses.replace(config, loss=dataclasses.replace(config.loss, preset="released"))
    out = run_tracked_training_stage(config, "train", [tiny_dataset], str(tmp_path / "out"))
    _, metadata = load_inference_checkpoint(out["model"])
    assert metadata["step"] == 4
    reports = [json.loads(line) for line in recorded_reports.read_text().splitlines()]
    recorded_reports.unlink()
    assert [[m["step"] for m in workers] for workers in reports] == [[2, 2], [4, 4]]
    torch.manual_seed(config.train.seed)  # the workers' initialisation (`_build_and_restore`)
    initial = weights_digest(build_train_wrapper(config.model))
    for workers in reports:
        assert workers[0]["weights_digest"] == workers[1]["weights_digest"]
    assert len({initial, *(workers[0]["weights_digest"] for workers in reports)}) == 3  # moved, twice
    # each rank read its own share of the videos: their losses differ, so equal weights are DDP's doing
    assert reports[-1][0]["total"] != reports[-1][1]["total"]
    # BatchNorm running statistics are buffers, not parameters: DDP (broadcast_buffers=True) copies rank
    # 0's into every rank before each forward, which then updates them with its own batch's statistics,
    # so after a step they differ between ranks. Training normalises with batch statistics and the
    # checkpoint holds rank 0's buffers; inference (eval mode) reads those.
    assert reports[-1][0]["buffers_digest"] != reports[-1][1]["buffers_digest"]


def test_cache_metrics_name_each_cache_and_whether_the_decoded_one_is_on():
    from components.data.loader import CacheCounts
    from pipelines.training.worker import cache_metrics

    assert cache_metrics({"encoded": CacheCounts(1, 4), "decoded": CacheCounts(0, 10, switched_off=True)}) == {
        "encoded_cache_hit_rate": 0.25, "decoded_cache_hit_rate": 0.0, "decoded_cache_on": 0.0}
    assert cache_metrics({"encoded": CacheCounts(0, 0), "decoded": CacheCounts(3, 4)})["decoded_cache_on"] == 1.0
