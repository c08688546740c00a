import pytest
import torch

from components.config import ModelConfig, config_from_dict


@pytest.fixture
def small_config() -> ModelConfig:
    return config_from_dict(ModelConfig, {"preset": "small"})


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
