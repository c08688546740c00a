"""The one memory read (`components.model.memory_read`) against its definition (tests/memory_reference.py):
STCN's L2 and XMem's anisotropic similarity, top-k, the gathered readout, gradients, bf16, query blocks."""

import math

import pytest
import torch

from components.config import ModelConfig, config_from_dict
from components.model import STCN, memory_read
from components.model.memory_read import attend, read, similarity
from tests.memory_reference import brute_read, brute_similarity, brute_weights


def _inputs(b: int = 2, ck: int = 8, n: int = 30, hw: int = 12, dtype: torch.dtype = torch.float64):
    """Memory keys B,Ck,N; shrinkage B,N,1 (>= 1); query keys B,Ck,HW; selection B,Ck,HW in (0, 1)."""
    g = torch.Generator().manual_seed(1)
    memory = torch.randn(b, ck, n, generator=g, dtype=dtype)
    shrinkage = 1 + 3 * torch.rand(b, n, 1, generator=g, dtype=dtype)
    query = torch.randn(b, ck, hw, generator=g, dtype=dtype)
    selection = torch.rand(b, ck, hw, generator=g, dtype=dtype)
    return memory, shrinkage, query, selection


def _maps(batch: int, objects: int, frames: int, seed: int = 0):
    """Keys B,64,T,5,7, values B,O,16,T,5,7 and a query B,64,5,7."""
    g = torch.Generator().manual_seed(seed)
    keys = torch.randn(batch, 64, frames, 5, 7, generator=g)
    values = torch.randn(batch, objects, 16, frames, 5, 7, generator=g)
    query = torch.randn(batch, 64, 5, 7, generator=g)
    return keys, values, query


@pytest.mark.parametrize("use_shrinkage", [True, False])
@pytest.mark.parametrize("use_selection", [True, False])
def test_similarity_is_the_definition_query_major(use_shrinkage, use_selection) -> None:
    memory, shrinkage, query, selection = _inputs()
    shrinkage = shrinkage if use_shrinkage else None
    selection = selection if use_selection else None
    got = similarity(memory, query, shrinkage, selection)
    assert got.shape == (2, 12, 30) and got.dtype == torch.float64 and got.is_contiguous()
    expected = brute_similarity(memory, shrinkage, query, selection).transpose(1, 2)
    if shrinkage is None and selection is None:  # STCN: the per-query -||k_q||^2 / sqrt(Ck) is left out
        expected = expected + query.pow(2).sum(dim=1)[:, :, None] / math.sqrt(8)
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)


def test_query_square_term_matters_with_shrinkage() -> None:
    """Dropping e.k_q^2 (as STCN's form does) would change the softmax once shrinkage varies along memory."""
    memory, shrinkage, query, selection = _inputs()
    full = torch.softmax(similarity(memory, query, shrinkage, selection), dim=2)
    q_sq = (selection * query.pow(2)).sum(dim=1)[:, :, None]  # B, HW, 1
    without = similarity(memory, query, shrinkage, selection) + q_sq * shrinkage.transpose(1, 2) / math.sqrt(8)
    assert (full - torch.softmax(without, dim=2)).abs().max() > 1e-2


def test_unit_shrinkage_and_selection_give_stcn_softmax() -> None:
    memory, _, query, _ = _inputs(b=1, ck=16, n=24, hw=12)
    stcn = torch.softmax(similarity(memory, query), dim=2)
    ones_s, ones_e = torch.ones(1, 24, 1, dtype=memory.dtype), torch.ones_like(query)
    torch.testing.assert_close(torch.softmax(similarity(memory, query, ones_s, ones_e), dim=2), stcn,
                               rtol=1e-10, atol=1e-12)


def test_gradients_reach_keys_shrinkage_and_selection() -> None:
    memory, shrinkage, query, selection = (t.requires_grad_() for t in _inputs(b=1, ck=4, n=5, hw=3))

    def weights(m, s, q, e):
        return attend(similarity(m, q, s, e), None).weights

    assert torch.autograd.gradcheck(weights, (memory, shrinkage, query, selection))
    similarity(memory, query, shrinkage, selection).logsumexp(dim=2).sum().backward()
    for tensor in (memory, shrinkage, query, selection):
        assert tensor.grad is not None and tensor.grad.abs().sum() > 0


def test_shrinkage_sharpens_the_softmax() -> None:
    memory, _, query, selection = _inputs()
    ones = torch.ones(2, 30, 1, dtype=memory.dtype)
    entropy = lambda w: -(w * w.log()).sum(dim=2)  # noqa: E731
    soft = attend(similarity(memory, query, ones, selection), None).weights
    sharp = attend(similarity(memory, query, 3 * ones, selection), None).weights
    assert (entropy(sharp) < entropy(soft)).all()
    assert (sharp.amax(dim=2) > soft.amax(dim=2)).all()


def test_bf16_under_autocast_stays_exact_in_fp32() -> None:
    """Keys far from the origin: the expansion cancels large squares, which bf16 would lose."""
    memory, shrinkage, query, selection = _inputs(dtype=torch.float32)
    memory, query = memory + 20, query + 20
    reference = brute_similarity(memory.double(), shrinkage.double(), query.double(), selection.double())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = similarity(memory, query, shrinkage.bfloat16(), selection.bfloat16()).transpose(1, 2)
    assert got.dtype == torch.float32
    bf16_reference = brute_similarity(memory, shrinkage.bfloat16().float(), query, selection.bfloat16().float())
    torch.testing.assert_close(got, bf16_reference, rtol=1e-3, atol=2e-3)  # only the inputs' rounding remains
    assert (got - reference.float()).abs().max() < 0.5


@pytest.mark.parametrize("k", [1, 4, 29])
def test_top_k_keeps_the_k_largest_weights_per_query_summing_to_one(k) -> None:
    logits = similarity(*_inputs()[::2])  # B, HW, N
    attention = attend(logits, k)
    assert attention.indices.shape == (2, 12, k)
    weights = attention.dense(30)
    assert ((weights > 0).sum(dim=2) == k).all()
    torch.testing.assert_close(weights.sum(dim=2), torch.ones(2, 12, dtype=weights.dtype))
    torch.testing.assert_close(weights, brute_weights(logits.transpose(1, 2), k).transpose(1, 2))


def test_top_k_none_or_large_is_the_full_softmax_and_zero_is_refused() -> None:
    logits = similarity(*_inputs()[::2])
    for k in (None, 30, 1000):
        attention = attend(logits, k)
        assert attention.indices is None
        torch.testing.assert_close(attention.weights, torch.softmax(logits, dim=2))
    with pytest.raises(ValueError, match="top_k"):
        attend(logits, 0)


@pytest.mark.parametrize("top_k", [3, None])
def test_columns_restrict_the_read_to_part_of_memory(top_k) -> None:
    logits = similarity(*_inputs()[::2])
    columns = torch.tensor([2, 5, 7, 11, 19, 23])
    restricted = logits.masked_fill(~torch.isin(torch.arange(30), columns), -math.inf)
    attention = attend(logits, top_k, columns)
    torch.testing.assert_close(attention.dense(30), brute_weights(restricted.transpose(1, 2), top_k).transpose(1, 2))
    rows = torch.randn(2, 30, 5, dtype=logits.dtype)
    torch.testing.assert_close(attention.readout(rows), attention.dense(30) @ rows)
    torch.testing.assert_close(attention.usage(30), attention.dense(30).sum(dim=(0, 1)).float())


@pytest.mark.parametrize(("batch", "objects", "frames", "top_k"), [
    (1, 1, 1, 20), (1, 3, 4, 20), (2, 2, 3, 5), (1, 2, 3, None), (1, 2, 3, 10_000), (1, 1, 2, 1),
])
def test_read_equals_the_definition(batch, objects, frames, top_k) -> None:
    keys, values, query = _maps(batch, objects, frames)
    got = read(keys, values, query, top_k)
    assert got.shape == (batch, objects, 16, 5, 7)
    torch.testing.assert_close(got.double(), brute_read(keys, values, query, top_k), rtol=1e-5, atol=1e-5)


def test_the_anisotropic_read_equals_the_definition() -> None:
    keys, values, query = _maps(2, 2, 3)
    g = torch.Generator().manual_seed(4)
    shrinkage, selection = 1 + torch.rand(2, 1, 3, 5, 7, generator=g), torch.rand(2, 64, 5, 7, generator=g)
    for top_k in (7, None):
        got = read(keys, values, query, top_k, shrinkage, selection)
        expected = brute_read(keys, values, query, top_k, shrinkage, selection)
        torch.testing.assert_close(got.double(), expected, rtol=1e-5, atol=1e-5)


def test_top_1_copies_the_nearest_memory_value() -> None:
    keys, values, query = _maps(1, 1, 2)
    keys[:, :, 1, 2, 3] = query[:, :, 4, 6]  # distance 0: the largest L2 affinity for query position (4, 6)
    out = read(keys, values, query, 1)
    torch.testing.assert_close(out[0, 0, :, 4, 6], values[0, 0, :, 1, 2, 3])


def test_blocks_of_queries_do_not_change_the_result(monkeypatch) -> None:
    keys, values, query = _maps(1, 3, 3)  # 3 objects x 16 channels, 35 query positions
    whole = read(keys, values, query, 4)
    monkeypatch.setattr(memory_read, "CPU_GATHER_ELEMENTS", 6 * 4 * 48)  # blocks of 6 queries: 5 full, 1 of 5
    torch.testing.assert_close(read(keys, values, query, 4), whole, rtol=1e-6, atol=1e-6)


def test_top_k_read_is_differentiable_like_the_dense_one() -> None:
    keys, values, query = (t.double().requires_grad_() for t in _maps(1, 2, 2))
    read(keys, values, query, 5).sum().backward()
    sparse = [t.grad.clone() for t in (keys, values, query)]
    for t in (keys, values, query):
        t.grad = None
    brute_read(keys, values, query, 5).sum().backward()
    for got, expected in zip(sparse, (keys.grad, values.grad, query.grad)):
        torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-8)


def test_bf16_values_under_autocast_stay_close() -> None:
    keys, values, query = _maps(1, 2, 3)
    reference = brute_read(keys, values, query, 5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = read(keys, values.bfloat16(), query.bfloat16(), 5)
    assert got.dtype == torch.bfloat16
    torch.testing.assert_close(got.double(), reference, rtol=0.05, atol=0.05)


def test_stcn_reads_through_it() -> None:
    torch.manual_seed(0)
    model = STCN(config_from_dict(ModelConfig, {"preset": "small"})).eval()
    keys, values, query = _maps(1, 2, 3)
    torch.testing.assert_close(model.read(keys, values, query, 5).double(), brute_read(keys, values, query, 5),
                               rtol=1e-5, atol=1e-5)
