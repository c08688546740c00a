"""DAVIS semi-supervised evaluation: J and F per object and frame, their statistics, and reports.

The definitions match the official DAVIS 2017 toolkit; see docs/evaluation.md for each convention.
Reports (matplotlib, Pillow) live in `components.evaluation.reports`, imported on demand.
"""

from components.evaluation.folders import score_folders, score_sequence_dir
from components.evaluation.masks import read_label_map
from components.evaluation.metrics import (
    Statistics,
    boundary_f_measure,
    boundary_map,
    boundary_tolerance,
    decay_bin_edges,
    disk,
    region_similarity,
    statistics,
)
from components.evaluation.protocol import (
    EvaluationResult,
    ObjectScore,
    SequenceScore,
    score_frame,
    score_sequence,
)
from components.evaluation.summary import format_table, result_dict, write_json

__all__ = [
    "EvaluationResult",
    "ObjectScore",
    "SequenceScore",
    "Statistics",
    "boundary_f_measure",
    "boundary_map",
    "boundary_tolerance",
    "decay_bin_edges",
    "disk",
    "format_table",
    "read_label_map",
    "region_similarity",
    "result_dict",
    "score_folders",
    "score_frame",
    "score_sequence",
    "score_sequence_dir",
    "statistics",
    "write_json",
]
