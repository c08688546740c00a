"""The correspondence probe: how good is the matching itself, without the value encoder and decoder.

Label propagation from key features alone (CRW's protocol) scored with the DAVIS J&F scorer, and
point correspondence accuracy on synthetic videos whose true motion is known. See docs/probe.md.
"""

from components.probe.config import ProbeConfig
from components.probe.correspondence import CorrespondenceTally, correspondence_accuracy, video_correspondence
from components.probe.keys import KeyEncoder, VideoKeys, as_key_encoder, encode_video
from components.probe.propagation import propagate_labels, read_labels
from components.probe.run import ProbeRun, probe_videos

__all__ = [
    "CorrespondenceTally",
    "KeyEncoder",
    "ProbeConfig",
    "ProbeRun",
    "VideoKeys",
    "as_key_encoder",
    "correspondence_accuracy",
    "encode_video",
    "probe_videos",
    "propagate_labels",
    "read_labels",
    "video_correspondence",
]
