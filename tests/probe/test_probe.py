"""The probe with keys made by hand: exact keys reproduce the masks and every point match, shuffled keys do
not; the radius, top-k and temperature act as specified; late objects join at their first mask."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from components.evaluation.masks import read_label_map
from components.probe import ProbeConfig, correspondence_accuracy, encode_video, probe_videos, propagate_labels
from components.probe.propagation import outside_radius, read_labels
from tests.probe.coded_videos import EXACT, SHUFFLED, Box, coded_video

CONFIG = ProbeConfig(context_frames=3, radius=4, frame_gaps=(1, 2, 4), reference_every=2, points_per_object=8)
BOXES = [Box(1, top=2, left=1, height=7, width=6, velocity=(2, 1)), Box(2, top=13, left=14, height=6, width=8, velocity=(-1, 0))]


def test_exact_keys_reproduce_every_mask_and_every_point(tmp_path) -> None:
    video = coded_video(BOXES, frames=7)
    run = probe_videos(EXACT, [video], tmp_path, CONFIG, progress=False)
    for index, name in enumerate(video.frame_names):
        assert np.array_equal(read_label_map(tmp_path / "predictions" / "coded" / f"{name}.png"), video.ground_truth[index])
    assert run.jf_mean == 1.0 and run.sequence_jf() == {"coded": 1.0}
    assert run.correspondence["corr_acc@4"] == 1.0
    assert all(run.correspondence[f"corr_acc@{r}/gap{g}"] == 1.0 for r in (4, 8, 16) for g in (1, 2, 4))
    assert run.correspondence["corr_ceiling@4"] == 1.0  # stride 1: every pixel is a cell centre
    assert run.correspondence["corr_points"] > 0
    assert run.metrics()["probe_jf"] == 1.0 and run.metrics()["corr_acc_at_8/gap2"] == 1.0
    document = json.loads(run.scores_path.read_text())
    assert document["probe"]["top_k"] == 10 and document["correspondence"]["corr_acc@8"] == 1.0


def test_shuffled_keys_drop_both(tmp_path) -> None:
    video = coded_video(BOXES, frames=7)
    run = probe_videos(SHUFFLED, [video], tmp_path, CONFIG, progress=False)
    assert run.jf_mean < 0.5
    assert run.correspondence["corr_acc@4"] < 0.2
    assert correspondence_accuracy(SHUFFLED, [video], CONFIG)["corr_acc@4"] < 0.2
    assert correspondence_accuracy(EXACT, [video], CONFIG)["corr_acc@4"] == 1.0


def test_a_late_object_joins_at_its_first_mask_and_reads_from_there_on(tmp_path) -> None:
    boxes = [BOXES[0], replace(BOXES[1], first_frame=3)]
    video = coded_video(boxes, frames=7, name="late")
    assert sorted(video.annotations) == [0, 3]  # each object given once, at its first mask
    labels = list(propagate_labels(encode_video(EXACT, video.frames), video.annotations, CONFIG))
    assert all(2 not in np.unique(lab) for lab in labels[:3])
    assert all(np.array_equal(lab, video.ground_truth[t]) for t, lab in enumerate(labels))
    run = probe_videos(EXACT, [video], tmp_path, CONFIG, progress=False)
    assert [o.object_id for o in run.result.sequences[0].objects] == [1]  # DAVIS: objects of the first frame


def test_frames_before_the_first_mask_are_background() -> None:
    video = coded_video(BOXES, frames=5)
    labels = list(propagate_labels(encode_video(EXACT, video.frames), {2: video.ground_truth[2]}, CONFIG))
    assert all(not lab.any() for lab in labels[:2])
    assert all(np.array_equal(labels[t], video.ground_truth[t]) for t in range(2, 5))


def _line_case(exact_at: int):
    """A 1x12 grid: the query cell 0's key sits exactly at context cell `exact_at`; cell 1 is a near miss.

    Labels are one-hot per context cell, so the output for cell 0 shows which cells were read, with what weight.
    """
    keys = torch.full((1, 2, 1, 12), 50.0)
    keys[0, :, 0, exact_at] = 0.0
    keys[0, :, 0, 1] = torch.tensor([1.0, 0.0])  # squared distance 1 from the query key
    labels = torch.eye(12).view(1, 12, 1, 12)  # T, L, h, w: cell j carries label j
    query = torch.full((2, 1, 12), 50.0)
    query[:, 0, 0] = 0.0
    return query, keys, labels


def test_previous_frames_are_read_only_within_the_radius() -> None:
    query, keys, labels = _line_case(exact_at=8)
    previous, given = torch.tensor([True]), torch.tensor([False])
    within = read_labels(query, keys, labels, previous, ProbeConfig(top_k=1, radius=5))
    assert within[:, 0, 0].argmax() == 1  # cell 8 is 8 cells away: out of reach, the near miss wins
    wide = read_labels(query, keys, labels, previous, ProbeConfig(top_k=1, radius=9))
    assert wide[:, 0, 0].argmax() == 8
    assert read_labels(query, keys, labels, given, ProbeConfig(top_k=1, radius=5))[:, 0, 0].argmax() == 8  # CRW: given frames whole
    assert read_labels(query, keys, labels, previous, ProbeConfig(top_k=1, radius=None))[:, 0, 0].argmax() == 8
    assert outside_radius(1, 12, 5.0)[0].nonzero().flatten().tolist() == list(range(5, 12))  # d < radius is in reach


def test_only_the_top_k_are_weighted_by_the_softmax_with_temperature() -> None:
    query, keys, labels = _line_case(exact_at=3)
    for temperature in (1.0, 2.0):
        config = ProbeConfig(top_k=2, radius=None, temperature=temperature)
        out = read_labels(query, keys, labels, torch.tensor([False]), config)[:, 0, 0]
        # logits -||k - q||^2 / sqrt(2) / T: 0 for cell 3, -1/sqrt(2)/T for cell 1, the rest far below
        near = math.exp(-1 / math.sqrt(2) / temperature)
        expected = torch.zeros(12)
        expected[3], expected[1] = 1 / (1 + near), near / (1 + near)
        assert torch.allclose(out, expected, atol=1e-6)
    everything = read_labels(query, keys, labels, torch.tensor([False]), ProbeConfig(top_k=12, radius=None, temperature=1e4))
    assert (everything[:, 0, 0] > 0).all()  # a large k and a hot softmax reach every cell


def test_config_is_checked() -> None:
    for bad in ({"top_k": 0}, {"radius": 0}, {"temperature": 0}, {"frame_gaps": ()}, {"frame_gaps": (1, 1)},
                {"radii_px": (0,)}, {"context_frames": -1}, {"max_videos": 0}):
        with pytest.raises(ValueError):
            ProbeConfig(**bad)
