"""Training building blocks: parameter groups, lr schedule, checkpoint state, NaN guard, stage transfer."""

import random

import numpy as np
import pytest
import torch

from components.config import LossConfig, ModelConfig, StageConfig, config_from_dict
from components.config.loader import ConfigError
from components.model import STCN, STCNTrainWrapper
from components.model.resnet import freeze_trunks
from components.training.batch import random_clip_batch
from components.training.guard import NonFiniteLossError, check_finite
from components.training.optim import build_optimizer, learning_rate_at, lr_multiplier, parameter_groups, set_learning_rate
from components.training.preview import prediction_grid
from components.training.state import TrainingState, capture_rng, restore_rng
from components.training.step import training_step
from components.training.transfer import VALUE_CONV1, load_stage_weights


@pytest.fixture
def small():
    torch.manual_seed(0)
    return STCNTrainWrapper(config_from_dict(ModelConfig, {"preset": "small"}))


@pytest.mark.parametrize(
    "name,multiplier",
    [
        ("key_encoder.conv1.weight", 0.2),
        ("key_encoder.layer1.0.conv1.weight", 0.2),
        ("key_encoder.layer3.1.bn2.weight", 0.4),
        ("value_encoder.trunk.bn1.bias", 0.2),
        ("value_encoder.trunk.layer2.0.conv1.weight", 0.4),
        ("value_encoder.fusion.block1.conv1.weight", 0.2),
        ("key_proj.weight", 1.0),
        ("correspondence_head.weight", 1.0),
        ("decoder.pred.weight", 1.0),
        ("module.key_encoder.layer2.0.conv1.weight", 0.4),  # DDP-wrapped names too
    ],
)
def test_layerwise_multipliers_follow_the_released_groups(name, multiplier):
    from components.training.optim import _strip_wrappers

    assert lr_multiplier(_strip_wrappers(name), layerwise=True) == multiplier
    assert lr_multiplier(name, layerwise=False) == 1.0


def test_parameter_groups_cover_every_parameter_once(small):
    groups = parameter_groups(small, 1e-4, layerwise=True)
    assert sorted(g["lr_multiplier"] for g in groups) == [0.2, 0.4, 1.0]
    counted = sum(len(g["params"]) for g in groups)
    assert counted == len([p for p in small.parameters() if p.requires_grad])
    optimiser = build_optimizer(small, "adamw", 1e-4, 1e-7, True)
    set_learning_rate(optimiser, 1e-5)
    assert sorted(g["lr"] for g in optimiser.param_groups) == pytest.approx([2e-6, 4e-6, 1e-5])


def test_learning_rate_drops_from_its_milestone_iteration_on():
    assert learning_rate_at(124_999, 150_000, 1e-4, (125_000,), 0.1) == pytest.approx(1e-4)
    assert learning_rate_at(125_000, 150_000, 1e-4, (125_000,), 0.1) == pytest.approx(1e-5)
    assert learning_rate_at(950, 1000, 1e-4, (900, 500), 0.1) == pytest.approx(1e-6)  # unsorted drops count alike


def test_step_schedule_is_multisteplr_stepped_once_per_iteration():
    """The recipes' scheduler: MultiStepLR(milestones), `scheduler.step()` after every iteration's update."""
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=5e-5)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, [7, 12], 0.1)
    for it in range(16):
        assert learning_rate_at(it, 16, 5e-5, (7, 12), 0.1) == pytest.approx(optimizer.param_groups[0]["lr"]), it
        optimizer.step()
        scheduler.step()


def test_cosine_schedule_decays_smoothly_to_the_step_schedules_end():
    lrs = [learning_rate_at(step, 10, 4e-4, (7,), 0.1, "cosine") for step in range(11)]
    assert lrs[0] == pytest.approx(4e-4) and lrs[-1] == pytest.approx(4e-5)
    assert lrs[5] == pytest.approx((4e-4 + 4e-5) / 2)
    assert all(a > b for a, b in zip(lrs, lrs[1:]))
    with pytest.raises(ValueError, match="linear"):
        learning_rate_at(5, 10, 1e-4, (), 0.1, "linear")


def test_training_state_round_trips_exactly(small):
    optimiser = build_optimizer(small, "adamw", 1e-3, 1e-7, True)
    batch = random_clip_batch(2, 3, 64, 2)
    training_step(small, batch, config_from_dict(LossConfig, {}), 0.5, optimiser, step=0)
    random.seed(3), np.random.seed(3), torch.manual_seed(3)
    state = TrainingState(step=11, model=small.state_dict(), optimizer=optimiser.state_dict(), rng=capture_rng(),
                          config={"a": 1}, dataset_version="abc")
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    loaded = TrainingState.from_bytes(state.to_bytes())
    assert loaded.step == 11 and loaded.config == {"a": 1} and loaded.dataset_version == "abc"
    for key, value in small.state_dict().items():
        assert torch.equal(loaded.model[key], value), key
    fresh = build_optimizer(STCNTrainWrapper(small.config), "adamw", 1e-3, 1e-7, True)
    fresh.load_state_dict(loaded.optimizer)
    original = optimiser.state_dict()["state"]
    for index, entry in fresh.state_dict()["state"].items():
        assert torch.equal(entry["exp_avg"], original[index]["exp_avg"])
    restore_rng(loaded.rng)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected


def test_nan_guard_raises_before_the_update(small):
    optimiser = build_optimizer(small, "adam", 1e-3, 0.0, False)
    batch = random_clip_batch(2, 3, 64, 1)
    poisoned = random_clip_batch(2, 3, 64, 1)
    poisoned.frames[0, 0, 0, 0, 0] = float("nan")
    before = {k: v.detach().clone() for k, v in small.named_parameters()}
    with pytest.raises(NonFiniteLossError, match="step 5"):
        training_step(small, poisoned, config_from_dict(LossConfig, {}), 0.5, optimiser, step=5)
    assert all(torch.equal(before[k], v) for k, v in small.named_parameters())  # no update was applied
    values, _ = training_step(small, batch, config_from_dict(LossConfig, {}), 0.5, optimiser, step=6)
    assert np.isfinite(values["total"]) and values["grad_norm"] > 0
    with pytest.raises(NonFiniteLossError, match="pcl=inf"):
        check_finite({"pcl": torch.tensor(float("inf")), "seg": torch.tensor(1.0)}, step=2)


def test_train_stage_starts_from_pretrain_weights_with_an_extra_channel():
    torch.manual_seed(0)
    pretrain = STCN(config_from_dict(ModelConfig, {"preset": "small", "single_object": True}))
    train = STCNTrainWrapper(config_from_dict(ModelConfig, {"preset": "small"}))
    missing = load_stage_weights(train, pretrain.state_dict())
    assert all(k.startswith("correspondence_head.") for k in missing)
    widened = train.state_dict()[VALUE_CONV1]
    assert widened.shape[1] == 5
    assert torch.equal(widened[:, :4], pretrain.state_dict()[VALUE_CONV1])
    assert widened[:, 4].abs().sum() > 0
    assert torch.equal(train.decoder.pred.weight, pretrain.decoder.pred.weight)


def test_prediction_grid_shows_every_clip_and_frame():
    batch = random_clip_batch(3, 3, 32, 2)
    logits = torch.randn(3, 2, 3, 32, 32)
    grid = prediction_grid(batch, logits, max_clips=2)
    assert grid.shape == (2 * 32, (3 + 2) * 32, 3) and grid.dtype == np.uint8


def test_freezing_the_trunks_stem_and_layer1_keeps_them_fixed_and_trains_the_rest(small):
    frozen_prefixes = ("key_encoder.conv1", "key_encoder.bn1", "key_encoder.layer1",
                       "value_encoder.trunk.conv1", "value_encoder.trunk.bn1", "value_encoder.trunk.layer1")
    expected = sum(p.numel() for n, p in small.named_parameters() if n.startswith(frozen_prefixes))
    assert freeze_trunks(small, 2) == expected > 0
    assert all(not p.requires_grad for n, p in small.named_parameters() if n.startswith(frozen_prefixes))
    assert small.key_encoder.layer2[0].conv1.weight.requires_grad
    optimiser = build_optimizer(small, "adamw", 1e-3, 1e-7, False)
    assert sum(p.numel() for g in optimiser.param_groups for p in g["params"]) == \
        sum(p.numel() for p in small.parameters()) - expected
    before = {k: v.detach().clone() for k, v in small.named_parameters()}
    training_step(small, random_clip_batch(2, 3, 64, 2), config_from_dict(LossConfig, {}), 0.5, optimiser, step=0)
    changed = {name for name, value in small.named_parameters() if not torch.equal(before[name], value)}
    assert not any(name.startswith(frozen_prefixes) for name in changed)
    assert {"key_encoder.layer2.0.bn2.weight", "value_encoder.trunk.layer2.0.bn2.weight", "key_proj.weight"} <= changed
    assert freeze_trunks(small, 0) == 0


def test_freeze_stages_out_of_range_are_refused(small):
    with pytest.raises(ValueError, match=r"\[0, 4\]"):
        small.key_encoder.freeze(5)
    with pytest.raises(ConfigError, match="freeze_at"):
        config_from_dict(StageConfig, {"freeze_at": -1})


class _RunsCode:
    """Unpickling this calls `marker.touch()`: what a writer of a shared bucket could plant in a checkpoint."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (type(self.marker).touch, (self.marker,))


def test_a_training_checkpoint_that_would_run_code_is_refused_without_running_it(tmp_path):
    import io

    marker = tmp_path / "ran"
    buffer = io.BytesIO()
    torch.save({"format": "corrvos-training/2", "step": _RunsCode(marker)}, buffer)
    with pytest.raises(ValueError, match="never unpickled"):
        TrainingState.from_bytes(buffer.getvalue())
    assert not marker.exists()


def test_data_wait_share_weighs_each_step_by_its_time():
    """A slow batch counts by its seconds, not as one step among many: 3 s waited of 8 s is a share of 3/8."""
    from pipelines.training.worker import _summarise

    window = {"total": [1.0, 1.0], "data_wait_s": [3.0, 0.0], "compute_s": [1.0, 4.0]}
    metrics = _summarise(window, 2, 8.0, 4, torch.device("cpu"))
    assert metrics["data_wait_share"] == pytest.approx(3 / 8)
    assert metrics["data_wait_s"] == pytest.approx(1.5) and metrics["samples_per_s"] == pytest.approx(1.0)
    assert "data_wait_share" not in _summarise({"total": [1.0]}, 1, 1.0, 1, torch.device("cpu"))
