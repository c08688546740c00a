"""The base models (STCN, XMem): ResNet trunks, inference networks, training wrappers and view B."""

from components.model.factory import build_network, build_train_wrapper
from components.model.stcn import STCN, KeyFeatures
from components.model.train_wrapper import STCNTrainWrapper
from components.model.views import ViewB, make_view_b, sample_view_b_theta, warp_to_view_b
from components.model.xmem import XMem, XMemKeyFeatures
from components.model.xmem_wrapper import XMemTrainWrapper

__all__ = [
    "STCN", "KeyFeatures", "STCNTrainWrapper", "XMem", "XMemKeyFeatures", "XMemTrainWrapper", "ViewB",
    "build_network", "build_train_wrapper", "make_view_b", "sample_view_b_theta", "warp_to_view_b",
]
