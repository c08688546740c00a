"""The inference readout equals STCN.read (dense affinity, softmax or top-k) up to float rounding."""

import pytest
import torch

from components.config import ModelConfig, config_from_dict
from components.inference import readout
from components.inference.readout import read_memory_top_k
from components.model import STCN


@pytest.fixture(scope="module")
def model() -> STCN:
    torch.manual_seed(0)
    return STCN(config_from_dict(ModelConfig, {"preset": "small"})).eval()


def _memory(batch: int, objects: int, frames: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    keys = torch.randn(batch, 64, frames, 5, 7, generator=g)
    values = torch.randn(batch, objects, 16, frames, 5, 7, generator=g)
    query = torch.randn(batch, 64, 5, 7, generator=g)
    return keys, values, query


@pytest.mark.parametrize(("batch", "objects", "frames", "top_k"), [
    (1, 1, 1, 20), (1, 3, 4, 20), (2, 2, 3, 5), (1, 2, 3, None), (1, 2, 3, 10_000), (1, 1, 2, 1),
])
def test_equals_the_model_read(model, batch, objects, frames, top_k) -> None:
    keys, values, query = _memory(batch, objects, frames)
    expected = model.read(keys, values, query, top_k)
    got = read_memory_top_k(keys, values, query, top_k)
    assert got.shape == expected.shape == (batch, objects, 16, 5, 7)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_top_1_copies_the_nearest_memory_value() -> None:
    keys, values, query = _memory(1, 1, 2)
    keys[:, :, 1, 2, 3] = query[:, :, 4, 6]  # distance 0: the largest L2 affinity for query position (4, 6)
    out = read_memory_top_k(keys, values, query, 1)
    torch.testing.assert_close(out[0, 0, :, 4, 6], values[0, 0, :, 1, 2, 3])


def test_blocks_of_queries_do_not_change_the_result(model, monkeypatch) -> None:
    keys, values, query = _memory(1, 3, 3)  # 3 objects x 16 channels, 35 query positions
    whole = read_memory_top_k(keys, values, query, 4)
    monkeypatch.setattr(readout, "CPU_GATHER_ELEMENTS", 6 * 4 * 48)  # blocks of 6 queries: 5 full, 1 of 5
    torch.testing.assert_close(read_memory_top_k(keys, values, query, 4), whole, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(whole, model.read(keys, values, query, 4), rtol=1e-5, atol=1e-5)


def test_bf16_values_under_autocast_stay_close(model) -> None:
    keys, values, query = _memory(1, 2, 3)
    reference = model.read(keys, values, query, 5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = read_memory_top_k(keys, values.bfloat16(), query.bfloat16(), 5)
    assert got.dtype == torch.bfloat16
    torch.testing.assert_close(got.float(), reference, rtol=0.05, atol=0.05)
