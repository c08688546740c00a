"""XMem's own blocks (METHOD_REFERENCE §5.2): the three-headed key projection and the two GRU-like
modules that write the sensory memory (the per-object hidden state at stride 16)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class KeyProjection(nn.Module):
    """f16 -> key (Ck), shrinkage s = d^2 + 1 (>= 1, how peaked a memory key's match is) and
    selection e = sigmoid(.) (which key channels a query cares about)."""

    def __init__(self, in_channels: int, key_dim: int) -> None:
        super().__init__()
        self.key = nn.Conv2d(in_channels, key_dim, 3, padding=1)
        self.shrinkage = nn.Conv2d(in_channels, 1, 3, padding=1)
        self.selection = nn.Conv2d(in_channels, key_dim, 3, padding=1)
        nn.init.orthogonal_(self.key.weight)
        nn.init.zeros_(self.key.bias)

    def forward(self, f16: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """f16: N,C,h,w -> (key N,Ck,h,w; shrinkage N,1,h,w; selection N,Ck,h,w)."""
        return self.key(f16), self.shrinkage(f16).pow(2) + 1, torch.sigmoid(self.selection(f16))


def gru_update(gates: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
    """XMem's GRU step: gates (N, 3*Ch) -> forget, update, candidate; h' = f*h*(1-u) + u*tanh(c)."""
    ch = hidden.shape[1]
    forget = torch.sigmoid(gates[:, :ch])
    update = torch.sigmoid(gates[:, ch : 2 * ch])
    candidate = torch.tanh(gates[:, 2 * ch :])
    return forget * hidden * (1 - update) + update * candidate


class HiddenReinforcer(nn.Module):
    """Deep update: refresh the sensory memory from a frame's freshly encoded object value."""

    def __init__(self, value_dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.transform = nn.Conv2d(value_dim + hidden_dim, 3 * hidden_dim, 3, padding=1)
        nn.init.xavier_normal_(self.transform.weight)

    def forward(self, value: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        """value: N,Cv,h,w; hidden: N,Ch,h,w -> new hidden N,Ch,h,w."""
        return gru_update(self.transform(torch.cat([value, hidden], dim=1)), hidden)


class HiddenUpdater(nn.Module):
    """Every frame: fold the decoder's stride-16, -8 and -4 features (and the logits) into the hidden state."""

    def __init__(self, dims: tuple[int, int, int], mid_dim: int, hidden_dim: int) -> None:
        super().__init__()
        d16, d8, d4 = dims
        self.from16 = nn.Conv2d(d16, mid_dim, 1)
        self.from8 = nn.Conv2d(d8, mid_dim, 1)
        self.from4 = nn.Conv2d(d4 + 1, mid_dim, 1)  # + the object's logit map at stride 4
        self.transform = nn.Conv2d(mid_dim + hidden_dim, 3 * hidden_dim, 3, padding=1)
        nn.init.xavier_normal_(self.transform.weight)

    def forward(self, g16: torch.Tensor, g8: torch.Tensor, g4: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        """g16/g8/g4: decoder features per object (N, C, stride 16/8/4); g4 includes the logit channel."""
        size = g16.shape[-2:]
        x = (
            self.from16(g16)
            + self.from8(F.interpolate(g8, size=size, mode="area"))
            + self.from4(F.interpolate(g4, size=size, mode="area"))
        )
        return gru_update(self.transform(torch.cat([x, hidden], dim=1)), hidden)
