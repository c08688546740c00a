"""Semi-supervised propagation: first-frame masks in, a label map per frame out."""

from components.inference.frames import FrameGeometry
from components.inference.memory_store import MemoryStore
from components.inference.propagate import PropagationResult, VideoPropagator
from components.inference.xmem_propagate import XMemPropagator, propagator_for

__all__ = ["FrameGeometry", "MemoryStore", "PropagationResult", "VideoPropagator", "XMemPropagator", "propagator_for"]
