"""XMem's memory read: anisotropic L2 similarity, softmax or top-k over memory, weighted sum of values.

The similarity is -sum_c e^Q_c (k^M_c - k^Q_c)^2 * s^M / sqrt(Ck): the query's selection e^Q weighs
key channels, the memory's shrinkage s^M (>= 1) sharpens the affinity of confident memory elements.
It is expanded into matmuls (e.k_m^2 - 2 (e.k_q).k_m + e.k_q^2) so that no B,Ck,N,HW tensor is made;
the query-square term stays because, scaled by s^M, it is not constant along the memory axis.
The expansion cancels large terms, so it runs in fp32 (or wider) with autocast off: bf16 would lose it.
"""

from __future__ import annotations

import math

import torch


def anisotropic_similarity(
    memory_keys: torch.Tensor,
    memory_shrinkage: torch.Tensor | None,
    query_keys: torch.Tensor,
    query_selection: torch.Tensor | None,
) -> torch.Tensor:
    """Similarity logits B,N,HW of memory keys B,Ck,N (shrinkage B,N,1) to query keys B,Ck,HW (selection B,Ck,HW).

    None for shrinkage or selection means 1. The result is a transposed view of a query-major
    (B,HW,N) tensor, so reductions over the memory axis (dim 1) run along contiguous memory.
    """
    b, ck, n = memory_keys.shape
    if query_keys.shape[:2] != (b, ck):
        raise ValueError(f"query keys are {tuple(query_keys.shape)}, memory keys {tuple(memory_keys.shape)}")
    if memory_shrinkage is not None and memory_shrinkage.shape != (b, n, 1):
        raise ValueError(f"shrinkage is {tuple(memory_shrinkage.shape)}, expected {(b, n, 1)}")
    if query_selection is not None and query_selection.shape != query_keys.shape:
        raise ValueError(f"selection is {tuple(query_selection.shape)}, query keys {tuple(query_keys.shape)}")
    dtype = torch.promote_types(torch.promote_types(memory_keys.dtype, query_keys.dtype), torch.float32)
    with torch.autocast(memory_keys.device.type, enabled=False):
        mk = memory_keys.to(dtype)  # B, Ck, N
        qk = query_keys.to(dtype)  # B, Ck, HW
        if query_selection is None:
            m_sq = mk.pow(2).sum(dim=1, keepdim=True)  # B, 1, N
            q_sq = qk.pow(2).sum(dim=1).unsqueeze(2)  # B, HW, 1
            distance = torch.baddbmm(m_sq + q_sq, qk.transpose(1, 2), mk, alpha=-2)  # B, HW, N
        else:
            qe = query_selection.to(dtype)  # B, Ck, HW
            weighted_q = qe * qk
            q_sq = (weighted_q * qk).sum(dim=1).unsqueeze(2)  # B, HW, 1
            left = torch.cat([qe, -2 * weighted_q], dim=1).transpose(1, 2)  # B, HW, 2Ck
            right = torch.cat([mk.pow(2), mk], dim=1)  # B, 2Ck, N
            distance = torch.baddbmm(q_sq, left, right)  # B, HW, N: e.k_m^2 - 2 (e.k_q).k_m + e.k_q^2
        scale = -1 / math.sqrt(ck)
        if memory_shrinkage is None:
            similarity = distance * scale
        else:
            similarity = distance * (memory_shrinkage.to(dtype).transpose(1, 2) * scale)  # B, 1, N
    return similarity.transpose(1, 2)


def softmax_top_k(similarity: torch.Tensor, top_k: int | None, dim: int = 1) -> torch.Tensor:
    """Normalise over the memory axis `dim`, keeping only the top-k per query (zeros elsewhere) when given."""
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be >= 1 or None, got {top_k}")
    if top_k is None or top_k >= similarity.shape[dim]:
        return torch.softmax(similarity, dim=dim)
    top, indices = torch.topk(similarity, k=top_k, dim=dim)
    return torch.zeros_like(similarity).scatter(dim, indices, torch.softmax(top, dim=dim))


def read_values(affinity: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """Weighted sum of memory values.  affinity B,N,HW; values B,O,Cv,N -> readout B,O,Cv,HW."""
    b, o, cv, n = values.shape
    if affinity.shape[:2] != (b, n):
        raise ValueError(f"affinity is {tuple(affinity.shape)}, values {tuple(values.shape)}")
    readout = values.reshape(b, o * cv, n) @ affinity.to(values.dtype)  # B, O*Cv, HW
    return readout.view(b, o, cv, affinity.shape[2])
