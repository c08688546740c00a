"""Build the network that `model.name` selects, for inference or for training (with head g)."""

from __future__ import annotations

from torch import nn

from components.config.schema import ModelConfig
from components.model.stcn import STCN
from components.model.train_wrapper import STCNTrainWrapper
from components.model.xmem import XMem
from components.model.xmem_wrapper import XMemTrainWrapper

NETWORKS: dict[str, type[nn.Module]] = {"stcn": STCN, "xmem": XMem}
TRAIN_WRAPPERS: dict[str, type[nn.Module]] = {"stcn": STCNTrainWrapper, "xmem": XMemTrainWrapper}


def build_network(config: ModelConfig) -> nn.Module:
    """The inference network (no head g) for `config.name`."""
    return NETWORKS[config.name](config)


def build_train_wrapper(config: ModelConfig) -> nn.Module:
    """The training wrapper (network + head g + clip unrolling) for `config.name`."""
    return TRAIN_WRAPPERS[config.name](config)
