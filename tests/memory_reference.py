"""The memory read by its definition, written plainly for tests: broadcast L2 distances, a masked softmax, a sum.

Independent of `components.model.memory_read` (which computes the same by matmul expansion, top-k
gathers and query blocks), so a test comparing the two checks the module against the maths.
"""

from __future__ import annotations

import math

import torch


def brute_similarity(memory, shrinkage, query, selection) -> torch.Tensor:
    """-sum_c e^Q_c (k^M_c - k^Q_c)^2 * s^M / sqrt(Ck), memory-major B,N,HW, by broadcasting over B,Ck,N,HW.
    memory B,Ck,N; shrinkage B,N,1 or None; query B,Ck,HW; selection B,Ck,HW or None."""
    ck = memory.shape[1]
    e = torch.ones_like(query) if selection is None else selection
    s = 1 if shrinkage is None else shrinkage
    squares = e[:, :, None, :] * (memory[:, :, :, None] - query[:, :, None, :]).pow(2)  # B, Ck, N, HW
    return -squares.sum(dim=1) * s / math.sqrt(ck)


def brute_weights(logits: torch.Tensor, top_k: int | None) -> torch.Tensor:
    """Softmax over memory (dim 1 of B,N,HW) among each query's `top_k` largest logits (None: all)."""
    if top_k is not None and top_k < logits.shape[1]:
        kth = logits.topk(top_k, dim=1).values[:, -1:]  # B, 1, HW
        logits = logits.masked_fill(logits < kth, -math.inf)
    return torch.softmax(logits, dim=1)


def brute_read(memory_keys, memory_values, query_keys, top_k=None, shrinkage=None, selection=None) -> torch.Tensor:
    """Readout B,O,Cv,h,w from keys B,Ck,T,h,w, values B,O,Cv,T,h,w, query B,Ck,h,w (shrinkage B,1,T,h,w,
    selection B,Ck,h,w, or None), in float64."""
    b, ck, t, h, w = memory_keys.shape
    o, cv = memory_values.shape[1:3]
    flat = lambda x: None if x is None else x.double().flatten(start_dim=2)  # noqa: E731
    s = None if shrinkage is None else flat(shrinkage).transpose(1, 2)
    weights = brute_weights(brute_similarity(flat(memory_keys), s, flat(query_keys), flat(selection)), top_k)
    values = memory_values.double().reshape(b, o * cv, t * h * w)
    return torch.einsum("bcn,bnq->bcq", values, weights).reshape(b, o, cv, *query_keys.shape[-2:])
