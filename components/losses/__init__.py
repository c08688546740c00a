"""Training losses: the mask loss and the correspondence terms `pcl`, `cross_view`, `ocl`."""

from components.losses.correspondence import cross_view_loss, pcl_loss, pseudo_labels
from components.losses.objective import CORRESPONDENCE_TERMS, compute_losses
from components.losses.ocl import ocl_loss, region_prototypes
from components.losses.schedule import bootstrap_fraction, correspondence_ramp
from components.losses.segmentation import bootstrapped_cross_entropy, dice_loss
from components.losses.similarity import gather_positions, grid_positions, l2_similarity

__all__ = [
    "CORRESPONDENCE_TERMS",
    "bootstrap_fraction",
    "bootstrapped_cross_entropy",
    "compute_losses",
    "correspondence_ramp",
    "cross_view_loss",
    "dice_loss",
    "gather_positions",
    "grid_positions",
    "l2_similarity",
    "ocl_loss",
    "pcl_loss",
    "pseudo_labels",
    "region_prototypes",
]
