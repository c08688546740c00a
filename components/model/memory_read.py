"""One memory read for every model: similarity, top-k softmax, readout.

STCN and XMem, in training and at inference, and the correspondence probe all read memory through
this module, so a fix or a speed-up reaches every caller. Each caller keeps only what is its own
(STCN's memory schedule, XMem's working and long-term memory, the probe's radius).

- `similarity`: negative squared L2 distance between memory keys (B,Ck,N) and query keys (B,Ck,HW)
  over sqrt(Ck), laid out query-major (B,HW,N) so softmax and top-k run along contiguous memory.
  XMem's anisotropic form weighs key channels by the query's selection and scales each memory
  element by its shrinkage (STCN: neither). The -||k_q||^2 term is constant along the memory axis
  and is dropped unless a shrinkage makes it matter. Computed in fp32 with autocast off, as one
  fused baddbmm: the expansion cancels large terms, which bf16 would lose.
- `attend`: softmax over all memory, or over each query's top-k (optionally within a subset of
  memory columns), kept sparse as (weights, indices).
- `Attention.readout`: the weighted sum of memory rows. With top-k, each query gathers its k rows
  (channel-last, one contiguous copy each) and weighs them with a batched matmul, K*HW instead of
  N*HW products per channel; on a CPU in blocks of queries whose rows stay in cache.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

CPU_GATHER_ELEMENTS = 1 << 20  # values gathered at once on a CPU (4 MB in fp32): ~100 queries at 512 channels


def similarity(
    memory_keys: torch.Tensor,
    query_keys: torch.Tensor,
    memory_shrinkage: torch.Tensor | None = None,
    query_selection: torch.Tensor | None = None,
) -> torch.Tensor:
    """Logits B,HW,N of memory keys B,Ck,N to query keys B,Ck,HW; shrinkage B,N,1 and selection B,Ck,HW
    (None: 1). With neither (STCN) the per-query constant -||k_q||^2 is left out: the softmax is the same."""
    b, ck, n = memory_keys.shape
    if query_keys.shape[:2] != (b, ck):
        raise ValueError(f"query keys are {tuple(query_keys.shape)}, memory keys {tuple(memory_keys.shape)}")
    if memory_shrinkage is not None and memory_shrinkage.shape != (b, n, 1):
        raise ValueError(f"shrinkage is {tuple(memory_shrinkage.shape)}, expected {(b, n, 1)}")
    if query_selection is not None and query_selection.shape != query_keys.shape:
        raise ValueError(f"selection is {tuple(query_selection.shape)}, query keys {tuple(query_keys.shape)}")
    dtype = torch.promote_types(torch.promote_types(memory_keys.dtype, query_keys.dtype), torch.float32)
    scale = 1 / math.sqrt(ck)
    with torch.autocast(memory_keys.device.type, enabled=False):
        mk = memory_keys.to(dtype)  # B, Ck, N
        qk = query_keys.to(dtype)  # B, Ck, HW
        if memory_shrinkage is None and query_selection is None:  # (2 k_q.k_m - ||k_m||^2) / sqrt(Ck)
            m_sq = mk.pow(2).sum(dim=1, keepdim=True)  # B, 1, N
            return torch.baddbmm(m_sq, qk.transpose(1, 2), mk, beta=-scale, alpha=2 * scale)
        if query_selection is None:
            m_sq = mk.pow(2).sum(dim=1, keepdim=True)  # B, 1, N
            q_sq = qk.pow(2).sum(dim=1).unsqueeze(2)  # B, HW, 1
            distance = torch.baddbmm(m_sq + q_sq, qk.transpose(1, 2), mk, alpha=-2)  # B, HW, N
        else:  # sum_c e_c (k_m - k_q)^2 = e.k_m^2 - 2 (e.k_q).k_m + e.k_q^2: no B,Ck,N,HW tensor
            qe = query_selection.to(dtype)  # B, Ck, HW
            weighted_q = qe * qk
            q_sq = (weighted_q * qk).sum(dim=1).unsqueeze(2)  # B, HW, 1
            left = torch.cat([qe, -2 * weighted_q], dim=1).transpose(1, 2)  # B, HW, 2Ck
            right = torch.cat([mk.pow(2), mk], dim=1)  # B, 2Ck, N
            distance = torch.baddbmm(q_sq, left, right)  # B, HW, N
        if memory_shrinkage is None:
            return distance * -scale
        return distance * (memory_shrinkage.to(dtype).transpose(1, 2) * -scale)  # B, 1, N


@dataclass(frozen=True)
class Attention:
    """Each query's softmax weights over memory: top-k (`indices` B,HW,K into memory) or dense over
    `columns` (a subset of memory, None = all of it). Weights are fp32."""

    weights: torch.Tensor  # B, HW, K or B, HW, n
    indices: torch.Tensor | None  # B, HW, K memory indices (top-k)
    columns: torch.Tensor | None  # n memory indices the dense weights cover (None: all)

    def usage(self, size: int) -> torch.Tensor:
        """Affinity each of the `size` memory elements receives, summed over queries and the batch (fp32)."""
        usage = torch.zeros(size, device=self.weights.device, dtype=torch.float32)
        if self.indices is not None:
            return usage.index_add_(0, self.indices.flatten(), self.weights.flatten().float())
        received = self.weights.float().sum(dim=(0, 1))
        return received if self.columns is None else usage.index_add_(0, self.columns, received)

    def dense(self, size: int) -> torch.Tensor:
        """The weights as a B,HW,size matrix (zeros where a query does not read)."""
        if self.indices is None and self.columns is None:
            return self.weights
        b, hw = self.weights.shape[:2]
        out = self.weights.new_zeros(b, hw, size)
        if self.indices is not None:
            return out.scatter(2, self.indices, self.weights)
        return out.index_copy(2, self.columns, self.weights)

    def readout(self, rows: torch.Tensor) -> torch.Tensor:
        """rows: B,N,C (one per memory element) -> B,HW,C in the rows' dtype."""
        weights = self.weights.to(rows.dtype)
        if self.indices is None:
            return weights @ (rows if self.columns is None else rows.index_select(1, self.columns))
        b, hw, k = self.indices.shape
        channels = rows.shape[2]
        n = rows.shape[1]
        if torch.is_grad_enabled() and (rows.requires_grad or weights.requires_grad):  # training: differentiable
            index = (self.indices + n * torch.arange(b, device=rows.device)[:, None, None]).flatten()
            chosen = rows.reshape(b * n, channels).index_select(0, index).view(b, hw, k, channels)
            return (weights.unsqueeze(2) @ chosen).squeeze(2)
        step = hw if rows.device.type != "cpu" else max(1, CPU_GATHER_ELEMENTS // (k * channels))
        out = rows.new_empty(b, hw, channels)
        for i in range(b):
            for q in range(0, hw, step):  # on a CPU, blocks of queries whose gathered rows stay in cache
                chosen = rows[i].index_select(0, self.indices[i, q: q + step].flatten()).view(-1, k, channels)
                out[i, q: q + step] = torch.bmm(weights[i, q: q + step].unsqueeze(1), chosen).squeeze(1)
        return out


def attend(logits: torch.Tensor, top_k: int | None, columns: torch.Tensor | None = None) -> Attention:
    """Softmax of query-major logits B,HW,N over memory (or its `columns`), over each query's top-k when
    `top_k` is below the memory size. Entries of -inf (out of reach) get weight 0."""
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be >= 1 or None, got {top_k}")
    if columns is not None:
        logits = logits.index_select(2, columns)
    if top_k is None or top_k >= logits.shape[2]:
        return Attention(torch.softmax(logits, dim=2), None, columns)
    top, indices = torch.topk(logits, k=top_k, dim=2)
    return Attention(torch.softmax(top, dim=2), indices if columns is None else columns[indices], None)


def read_rows(
    memory_keys: torch.Tensor,
    rows: torch.Tensor,
    query_keys: torch.Tensor,
    top_k: int | None = None,
    memory_shrinkage: torch.Tensor | None = None,
    query_selection: torch.Tensor | None = None,
) -> torch.Tensor:
    """The read on flat memory: keys B,Ck,N, rows B,N,C (one per memory element; any strides), query keys
    B,Ck,HW, shrinkage B,N,1, selection B,Ck,HW -> readout B,HW,C. Callers that keep their memory
    element-major (the engines) pass views of it: nothing is stacked or copied whole."""
    if rows.shape[:2] != (memory_keys.shape[0], memory_keys.shape[2]):
        raise ValueError(f"rows are {tuple(rows.shape)}, memory keys {tuple(memory_keys.shape)}")
    logits = similarity(memory_keys, query_keys, memory_shrinkage, query_selection)
    return attend(logits, top_k).readout(rows)


def read(
    memory_keys: torch.Tensor,
    memory_values: torch.Tensor,
    query_keys: torch.Tensor,
    top_k: int | None = None,
    memory_shrinkage: torch.Tensor | None = None,
    query_selection: torch.Tensor | None = None,
) -> torch.Tensor:
    """The read on spatial maps (training): keys B,Ck,T,h,w; values B,O,Cv,T,h,w; query B,Ck,h,w; shrinkage
    B,1,T,h,w; selection B,Ck,h,w -> readout B,O,Cv,h,w."""
    b, ck, t, h, w = memory_keys.shape
    o, cv = memory_values.shape[1:3]
    if query_keys.shape[-2:] != (h, w):
        raise ValueError(f"query is {tuple(query_keys.shape[-2:])}, memory frames are {(h, w)}")
    if memory_values.shape[3:] != (t, h, w):
        raise ValueError(f"values are {tuple(memory_values.shape)}, keys {tuple(memory_keys.shape)}")
    rows = memory_values.reshape(b, o * cv, t * h * w).transpose(1, 2)  # B, N, O*Cv
    if top_k is not None and top_k < t * h * w and not rows.requires_grad:
        rows = rows.contiguous()  # the gather copies whole rows: make each one contiguous once
    readout = read_rows(
        memory_keys.flatten(start_dim=2), rows, query_keys.flatten(start_dim=2), top_k,
        None if memory_shrinkage is None else memory_shrinkage.flatten(start_dim=2).transpose(1, 2),
        None if query_selection is None else query_selection.flatten(start_dim=2),
    )  # B, HW, O*Cv
    return readout.transpose(1, 2).reshape(b, o, cv, h, w)
