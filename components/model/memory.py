"""STCN's memory read: L2 affinity between memory and query keys, softmax or top-k, readout.

The affinity is -||k_m - k_q||^2 / sqrt(C_k) without the -||k_q||^2 term, which is constant along
the memory axis and so cannot change the softmax over it.
"""

from __future__ import annotations

import math

import torch


def l2_affinity(memory_keys: torch.Tensor, query_key: torch.Tensor) -> torch.Tensor:
    """Raw affinity logits.  memory_keys: B, Ck, T, h, w;  query_key: B, Ck, h, w  ->  B, T*h*w, h*w."""
    ck = memory_keys.shape[1]
    mk = memory_keys.flatten(start_dim=2)  # B, Ck, THW
    qk = query_key.flatten(start_dim=2)  # B, Ck, HW
    mk_sq = mk.pow(2).sum(dim=1).unsqueeze(2)  # B, THW, 1
    ab = mk.transpose(1, 2) @ qk  # B, THW, HW
    return (2 * ab - mk_sq) / math.sqrt(ck)


def softmax_affinity(logits: torch.Tensor, top_k: int | None = None) -> torch.Tensor:
    """Normalise affinity logits over the memory axis (dim 1), keeping only the top-k when given."""
    if top_k is None or top_k >= logits.shape[1]:
        return torch.softmax(logits, dim=1)
    values, indices = torch.topk(logits, k=top_k, dim=1)
    weights = torch.softmax(values, dim=1)
    return torch.zeros_like(logits).scatter_(1, indices, weights)


def read_memory(affinity: torch.Tensor, memory_values: torch.Tensor) -> torch.Tensor:
    """Weighted sum of memory values.  affinity: B, THW, HW;  memory_values: B, O, Cv, T, h, w -> B, O, Cv, h, w."""
    b, o, cv, t, h, w = memory_values.shape
    mv = memory_values.reshape(b, o * cv, t * h * w)
    readout = mv @ affinity.to(mv.dtype)  # B, O*Cv, HW
    hq, wq = _query_size(affinity.shape[2], h, w)
    return readout.view(b, o, cv, hq, wq)


def _query_size(hw: int, h: int, w: int) -> tuple[int, int]:
    """The query shares the memory frames' feature size; checked so a mismatch fails loudly."""
    if hw != h * w:
        raise ValueError(f"query has {hw} positions, memory frames have {h}x{w}")
    return h, w
