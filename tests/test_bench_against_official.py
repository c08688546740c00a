"""The pieces of `bench.inference --against-official` that run without an official clone (CI has none):
how a real clip becomes a multi-object one, how the repository kind is told, how agreement is measured."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench.against_official import compare, detect_format, split_into_bands, synthetic_clip


def test_a_foreground_is_cut_into_bands_of_equal_pixel_count_left_to_right() -> None:
    mask = np.zeros((40, 60), dtype=np.uint8)
    mask[5:35, 10:50] = 1  # one object (read_label_map gives DAVIS 2016's 255 as id 1)
    mask[0, 0] = 1  # and a stray pixel at the far left
    bands = split_into_bands(mask, 3)
    counts = [int((bands == i).sum()) for i in (1, 2, 3)]
    assert sum(counts) == int((mask > 0).sum()) and set(np.unique(bands)) == {0, 1, 2, 3}
    assert max(counts) - min(counts) <= 30  # one column of 30 pixels at most between bands
    first_columns = [np.nonzero(bands == i)[1].min() for i in (1, 2, 3)]
    assert first_columns == sorted(first_columns) and bands[0, 0] == 1
    assert not bands[mask == 0].any()


def test_void_pixels_are_not_foreground_and_too_few_pixels_is_an_error() -> None:
    mask = np.zeros((10, 10), dtype=np.uint8)
    mask[2:4, 2:8] = 1
    mask[6:8, 2:8] = 255  # DAVIS 2017 void
    assert not split_into_bands(mask, 2)[6:8].any()
    with pytest.raises(SystemExit, match="cannot make 20 objects"):
        split_into_bands(mask, 20)


def test_the_synthetic_clip_starts_with_every_object_and_moves_them() -> None:
    frames, first = synthetic_clip(4, 96, 168, objects=3, seed=1)
    assert frames.shape == (4, 96, 168, 3) and first.shape == (96, 168)
    assert set(np.unique(first)) == {0, 1, 2, 3}
    assert not np.array_equal(frames[0], frames[3])


def test_repository_kinds_are_told_by_their_layout(tmp_path: Path) -> None:
    xmem, stcn, release, other = (tmp_path / n for n in ("xmem", "stcn", "release", "other"))
    (xmem / "inference").mkdir(parents=True)
    (xmem / "inference" / "inference_core.py").write_text("")
    for root, network in ((stcn, "class STCN: pass\n"), (release, "self.key_proj2 = None\n")):
        (root / "model").mkdir(parents=True)
        (root / "inference_core.py").write_text("")
        (root / "model" / "eval_network.py").write_text(network)
    other.mkdir()
    assert [detect_format(p) for p in (xmem, stcn, release)] == ["xmem", "stcn", "vos-correspondence"]
    with pytest.raises(SystemExit, match="name --format"):
        detect_format(other)


def test_agreement_skips_the_given_first_frame_and_counts_label_flips() -> None:
    official = [np.full((2, 4, 4), 0.5, np.float32) for _ in range(3)]
    for p in official:
        p[1] += 0.1  # the object wins everywhere
    ours = [p.copy() for p in official]
    ours[0][:] = 0  # frame 0 is the given mask: never compared
    ours[2][1, 0, 0] = 0.3  # one pixel flips to background, off by 0.3
    agreement = compare(iter(ours), iter(official))
    assert agreement.max_abs == pytest.approx(0.3)
    assert agreement.label_share == pytest.approx(1 - 1 / 32)
    assert agreement.by_frame == pytest.approx((0.0, 0.3)) and "3.0e-01 in frames 1-2" in agreement.growth()
    with pytest.raises(ValueError):  # a missing frame on one side is not silently ignored
        compare(iter(ours[:2]), iter(official))
