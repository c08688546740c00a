"""The STCN model: ResNet trunks, the inference network, the training wrapper and view B."""

from components.model.stcn import STCN, KeyFeatures
from components.model.train_wrapper import STCNTrainWrapper
from components.model.views import ViewB, make_view_b, sample_view_b_theta, warp_to_view_b

__all__ = ["STCN", "KeyFeatures", "STCNTrainWrapper", "ViewB", "make_view_b", "sample_view_b_theta", "warp_to_view_b"]
