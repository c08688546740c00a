"""XMem's anisotropic similarity equals its definition, reduces to STCN's L2, and is differentiable."""

import math

import pytest
import torch

from components.model.anisotropic import anisotropic_similarity, read_values, softmax_top_k
from components.model.memory import l2_affinity


def _inputs(b: int = 2, ck: int = 8, n: int = 30, hw: int = 12, dtype: torch.dtype = torch.float64):
    """Memory keys B,Ck,N; shrinkage B,N,1 (>= 1); query keys B,Ck,HW; selection B,Ck,HW in (0, 1)."""
    g = torch.Generator().manual_seed(1)
    memory = torch.randn(b, ck, n, generator=g, dtype=dtype)
    shrinkage = 1 + 3 * torch.rand(b, n, 1, generator=g, dtype=dtype)
    query = torch.randn(b, ck, hw, generator=g, dtype=dtype)
    selection = torch.rand(b, ck, hw, generator=g, dtype=dtype)
    return memory, shrinkage, query, selection


def _brute_force(memory, shrinkage, query, selection) -> torch.Tensor:
    """-sum_c e^Q_c (k^M_c - k^Q_c)^2 * s^M / sqrt(Ck) by broadcasting over B,Ck,N,HW."""
    ck = memory.shape[1]
    e = torch.ones_like(query) if selection is None else selection
    s = 1 if shrinkage is None else shrinkage
    squares = e[:, :, None, :] * (memory[:, :, :, None] - query[:, :, None, :]).pow(2)  # B, Ck, N, HW
    return -squares.sum(dim=1) * s / math.sqrt(ck)


@pytest.mark.parametrize("use_shrinkage", [True, False])
@pytest.mark.parametrize("use_selection", [True, False])
def test_equals_the_broadcast_definition(use_shrinkage, use_selection) -> None:
    memory, shrinkage, query, selection = _inputs()
    shrinkage = shrinkage if use_shrinkage else None
    selection = selection if use_selection else None
    got = anisotropic_similarity(memory, shrinkage, query, selection)
    assert got.shape == (2, 30, 12) and got.dtype == torch.float64
    torch.testing.assert_close(got, _brute_force(memory, shrinkage, query, selection), rtol=1e-10, atol=1e-10)


def test_query_square_term_matters_with_shrinkage() -> None:
    """Dropping e.k_q^2 (as STCN may) would change the softmax once shrinkage varies along memory."""
    memory, shrinkage, query, selection = _inputs()
    full = torch.softmax(anisotropic_similarity(memory, shrinkage, query, selection), dim=1)
    q_sq = (selection * query.pow(2)).sum(dim=1, keepdim=True)  # B, 1, HW
    without = anisotropic_similarity(memory, shrinkage, query, selection) + q_sq * shrinkage / math.sqrt(8)
    assert (full - torch.softmax(without, dim=1)).abs().max() > 1e-2


def test_unit_shrinkage_and_selection_give_stcn_softmax() -> None:
    memory, _, query, _ = _inputs(b=1, ck=16, n=2 * 3 * 4, hw=3 * 4)
    stcn_logits = l2_affinity(memory.view(1, 16, 2, 3, 4), query.view(1, 16, 3, 4))  # B, THW, HW
    ones_s, ones_e = torch.ones(1, 24, 1, dtype=memory.dtype), torch.ones_like(query)
    for shrinkage, selection in [(None, None), (ones_s, ones_e)]:
        ours = softmax_top_k(anisotropic_similarity(memory, shrinkage, query, selection), None)
        torch.testing.assert_close(ours, torch.softmax(stcn_logits, dim=1), rtol=1e-10, atol=1e-12)


def test_gradients_reach_keys_shrinkage_and_selection() -> None:
    memory, shrinkage, query, selection = (t.requires_grad_() for t in _inputs(b=1, ck=4, n=5, hw=3))
    def weights(m, s, q, e):
        return softmax_top_k(anisotropic_similarity(m, s, q, e), None)

    assert torch.autograd.gradcheck(weights, (memory, shrinkage, query, selection))
    anisotropic_similarity(memory, shrinkage, query, selection).logsumexp(dim=1).sum().backward()
    for tensor in (memory, shrinkage, query, selection):
        assert tensor.grad is not None and tensor.grad.abs().sum() > 0


def _entropy(weights: torch.Tensor) -> torch.Tensor:
    return -(weights * weights.log()).sum(dim=1)


def test_shrinkage_sharpens_the_softmax() -> None:
    memory, _, query, selection = _inputs()
    ones = torch.ones(2, 30, 1, dtype=memory.dtype)
    soft = softmax_top_k(anisotropic_similarity(memory, ones, query, selection), None)
    sharp = softmax_top_k(anisotropic_similarity(memory, 3 * ones, query, selection), None)
    assert (_entropy(sharp) < _entropy(soft)).all()
    assert (sharp.amax(dim=1) > soft.amax(dim=1)).all()


def test_bf16_under_autocast_stays_exact_in_fp32() -> None:
    """Keys far from the origin: the expansion cancels large squares, which bf16 would lose."""
    memory, shrinkage, query, selection = _inputs(dtype=torch.float32)
    memory, query = memory + 20, query + 20
    reference = _brute_force(memory.double(), shrinkage.double(), query.double(), selection.double())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = anisotropic_similarity(memory, shrinkage.bfloat16(), query, selection.bfloat16())
    assert got.dtype == torch.float32
    bf16_reference = _brute_force(memory, shrinkage.bfloat16().float(), query, selection.bfloat16().float())
    torch.testing.assert_close(got, bf16_reference, rtol=1e-3, atol=2e-3)  # only the inputs' rounding remains
    assert (got - reference.float()).abs().max() < 0.5


@pytest.mark.parametrize("k", [1, 4, 29])
def test_top_k_keeps_k_weights_per_query_that_sum_to_one(k) -> None:
    logits = anisotropic_similarity(*_inputs())  # B, N, HW
    weights = softmax_top_k(logits, k)
    assert ((weights > 0).sum(dim=1) == k).all()
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(2, 12, dtype=weights.dtype))
    kept = weights > 0  # the k largest logits of each query, renormalised among themselves
    assert (logits.masked_fill(~kept, -math.inf).amax(dim=1) == logits.amax(dim=1)).all()
    assert (logits.masked_fill(kept, math.inf).amin(dim=1) <= logits.masked_fill(~kept, math.inf).amin(dim=1)).all()
    torch.testing.assert_close(weights[kept], torch.softmax(logits.masked_fill(~kept, -math.inf), dim=1)[kept])


def test_top_k_none_or_large_is_the_full_softmax_and_dim_is_respected() -> None:
    logits = anisotropic_similarity(*_inputs())
    torch.testing.assert_close(softmax_top_k(logits, None), torch.softmax(logits, dim=1))
    torch.testing.assert_close(softmax_top_k(logits, 30), torch.softmax(logits, dim=1))
    query_major = softmax_top_k(logits.transpose(1, 2), 5, dim=2)
    torch.testing.assert_close(query_major, softmax_top_k(logits, 5).transpose(1, 2))
    with pytest.raises(ValueError, match="top_k"):
        softmax_top_k(logits, 0)


def test_read_values_is_the_weighted_sum() -> None:
    affinity = softmax_top_k(anisotropic_similarity(*_inputs()), 3)  # B, N, HW
    values = torch.randn(2, 3, 5, 30, dtype=torch.float64)  # B, O, Cv, N
    got = read_values(affinity, values)
    assert got.shape == (2, 3, 5, 12)
    torch.testing.assert_close(got, torch.einsum("bocn,bnq->bocq", values, affinity))
    with pytest.raises(ValueError):
        read_values(affinity, values[..., :29])
