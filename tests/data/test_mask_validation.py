"""Masks that read fine but mean something else are refused at ingest, predict and score: anti-aliased
palette masks, sequences mixing palette and grayscale masks, sequences without their first-frame mask."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from components.data.config import IngestConfig
from components.data.ingest import ingest
from components.data.mask_checks import MIN_BLEND_IDS, antialiasing_evidence
from components.data.sources import ReadOptions, open_source
from components.data.synthetic import SyntheticSpec, generate_video
from components.errors import DataError
from components.evaluation.folders import score_sequence_dir
from components.evaluation.predict import load_annotations
from tests.data.conftest import SHARED_DATA, make_davis, make_youtube_vos, write_jpeg, write_mask

PLAIN = ReadOptions()
SIZE = (32, 32)


def _davis_palette() -> np.ndarray:
    """The DAVIS / PASCAL VOC palette: id -> RGB."""
    palette = np.zeros((256, 3), np.uint8)
    for i in range(256):
        c, rgb = i, [0, 0, 0]
        for j in range(8):
            for k in range(3):
                rgb[k] |= ((c >> k) & 1) << (7 - j)
            c >>= 3
        palette[i] = rgb
    return palette


def two_objects(height: int, width: int) -> np.ndarray:
    """A disc (id 1) and a box (id 2) touching it, in an id mask."""
    yy, xx = np.mgrid[:height, :width]
    ids = np.zeros((height, width), np.uint8)
    ids[(yy - 0.4 * height) ** 2 + (xx - 0.35 * width) ** 2 < (0.25 * min(height, width)) ** 2] = 1
    ids[(yy > 0.5 * height) & (yy < 0.9 * height) & (xx > 0.5 * width) & (xx < 0.85 * width)] = 2
    return ids


def antialiased(ids: np.ndarray, size: tuple[int, int]) -> Image.Image:
    """`ids` drawn in the DAVIS colours, resized bilinearly to `size` (h, w) and quantised to a palette:
    what an image editor or a careless script saves, each blend colour becoming a palette index."""
    rgb = Image.fromarray(_davis_palette()[ids]).resize((size[1], size[0]), Image.BILINEAR)
    return rgb.quantize(256)


def write_antialiased(path: Path, size: tuple[int, int] = SIZE) -> None:
    antialiased(two_objects(size[0] // 2, size[1] // 2), size).save(path)


def many_solid_objects() -> np.ndarray:
    """Nine touching 10x10 objects (ids 1..9) and a 1-pixel rope (id 10) between two of them: real-style."""
    ids = np.zeros(SIZE, np.uint8)
    for k in range(9):
        y, x = 1 + 10 * (k // 3), 1 + 10 * (k % 3)
        ids[y : y + 10, x : x + 10] = k + 1
    ids[5:20, 10] = 10  # thin, and between objects 1, 2 and 4: one such id is never anti-aliasing
    return ids


@pytest.fixture
def davis_p(tmp_path: Path) -> Path:
    """DAVIS 2017-style: sequences `duo` (6 frames) and `trio` (5), palette masks of two objects, 32x32."""
    return make_davis(tmp_path / "davis", {"duo": 6, "trio": 5}, mode="P", objects=2, size=SIZE)


def test_antialiased_palette_first_mask_is_refused_naming_the_file(davis_p: Path) -> None:
    first = davis_p / "Annotations/duo/00000.png"
    write_antialiased(first)
    evidence = antialiasing_evidence(np.asarray(Image.open(first)))
    assert evidence.ids >= MIN_BLEND_IDS and evidence.antialiased  # without the check: that many "objects"
    source = open_source("davis", str(davis_p))
    with pytest.raises(DataError, match=r"Annotations/duo/00000\.png: looks anti-aliased \(\d+ ids, \d+ of them "
                                        r"covering almost only border pixels") as caught:
        source.read("duo", PLAIN)
    assert "\n" not in str(caught.value)
    assert source.read("trio", PLAIN).frame_objects[0] == [1, 2]  # the other sequence is untouched


def test_antialiased_palette_mask_later_in_a_youtube_vos_video_is_refused(tmp_path: Path) -> None:
    root = make_youtube_vos(tmp_path / "ytvos")
    write_antialiased(root / "train/Annotations/early/00010.png", (32, 48))
    with pytest.raises(DataError, match=r"early/00010\.png: looks anti-aliased"):
        open_source("youtube-vos", str(root)).read("early", PLAIN)


def test_real_style_multi_object_palette_masks_are_accepted(davis_p: Path) -> None:
    ids = many_solid_objects()
    evidence = antialiasing_evidence(ids)
    assert (evidence.ids, evidence.antialiased) == (10, False) and evidence.blend_ids <= 1
    for t in range(6):
        write_mask(davis_p / f"Annotations/duo/{t:05d}.png", ids, "P")
    record = open_source("davis", str(davis_p)).read("duo", PLAIN)
    assert record.frame_objects[0] == list(range(1, 11))
    assert np.array_equal(record.mask(0), ids)


def test_mixed_mask_modes_in_a_sequence_are_an_error_naming_both_files(davis_p: Path) -> None:
    grey = davis_p / "Annotations/trio/00003.png"
    ids = np.asarray(Image.open(grey))
    write_mask(grey, ids, "L")
    with pytest.raises(DataError, match=r"sequence 'trio' mixes mask modes: \S*trio/00000\.png is palette \(P\), "
                                        r"\S*trio/00003\.png is grayscale \(L\)"):
        open_source("davis", str(davis_p)).read("trio", PLAIN)


def test_missing_first_frame_mask_is_an_error_naming_the_sequence(davis_p: Path) -> None:
    (davis_p / "Annotations/duo/00000.png").unlink()
    (davis_p / "Annotations/duo/00001.png").unlink()
    with pytest.raises(DataError, match=r"Annotations/duo/00000\.png: sequence 'duo' has no mask for its first "
                                        r"frame \(its first mask is 00002\.png\)"):
        open_source("davis", str(davis_p)).read("duo", PLAIN)


def test_sequence_with_frames_and_no_masks_is_an_error_naming_the_sequence(davis_p: Path) -> None:
    for path in (davis_p / "Annotations/trio").iterdir():
        path.unlink()
    with pytest.raises(DataError, match=r"sequence 'trio' has no mask for its first frame \(it has no masks at all\)"):
        open_source("davis", str(davis_p)).read("trio", PLAIN)


def test_youtube_vos_with_all_frames_starts_at_the_first_annotated_frame(tmp_path: Path) -> None:
    root = make_youtube_vos(tmp_path / "ytvos")
    frames = root / "train/JPEGImages/early"
    for stem in ("00001", "00002", "00003"):  # all-frames layout: frames between the annotated ones ...
        write_jpeg(frames / f"{stem}.jpg", np.full((32, 48, 3), 90, np.uint8))
    (root / "train/Annotations/early/00000.png").unlink()  # ... and the first annotation comes later
    record = open_source("youtube-vos", str(root)).read("early", PLAIN)
    assert record.frame_names == ["00005", "00010", "00015", "00020", "00025"]
    assert record.annotated == [0, 1, 2, 3, 4] and record.frame_objects[0] == [1, 2]
    for path in (root / "train/Annotations/late").iterdir():
        path.unlink()
    with pytest.raises(DataError, match=r"sequence 'late' has no mask for its first frame \(it has no masks at all\)"):
        open_source("youtube-vos", str(root)).read("late", PLAIN)


def test_skip_mode_skips_bad_mask_videos_and_reports_them(tmp_path: Path) -> None:
    names = {"alpha": 4, "beta": 4, "gamma": 4, "delta": 4}
    root = make_davis(tmp_path / "davis", names, mode="P", objects=2, size=SIZE)
    write_antialiased(root / "Annotations/beta/00000.png")
    write_mask(root / "Annotations/gamma/00002.png", np.asarray(Image.open(root / "Annotations/gamma/00002.png")), "L")
    (root / "Annotations/delta/00000.png").unlink()
    config = IngestConfig(on_error="skip", engine="threads", workers=1)
    manifest = ingest("davis", str(root), str(tmp_path / "out"), config, progress=False)
    assert [v.name for v in manifest.videos] == ["alpha"]
    reasons = {s["video"]: s["reason"] for s in manifest.skipped}
    assert set(reasons) == {"beta", "delta", "gamma"}
    assert "beta/00000.png: looks anti-aliased" in reasons["beta"]
    assert "sequence 'gamma' mixes mask modes" in reasons["gamma"]
    assert "sequence 'delta' has no mask for its first frame" in reasons["delta"]
    stored = json.loads((tmp_path / "out/manifest.json").read_text())
    assert {s["video"] for s in stored["skipped"]} == {"beta", "delta", "gamma"}
    with pytest.raises(DataError, match=r"beta/00000\.png: looks anti-aliased"):
        ingest("davis", str(root), str(tmp_path / "out2"), IngestConfig(engine="threads", workers=1), progress=False)


def _user_video(tmp_path: Path, count: int = 4) -> tuple[list[Path], Path]:
    """Frames of a user's video and a DAVIS-layout folder of its masks (palette, two objects)."""
    frames, masks = tmp_path / "frames", tmp_path / "masks"
    paths = []
    for t in range(count):
        paths.append(frames / f"{t:05d}.jpg")
        write_jpeg(paths[-1], np.full((*SIZE, 3), 40 * t, np.uint8))
    write_mask(masks / "00000.png", two_objects(*SIZE), "P")
    return paths, masks


def test_predict_refuses_an_antialiased_first_mask_naming_the_file(tmp_path: Path) -> None:
    paths, masks = _user_video(tmp_path)
    assert set(load_annotations(masks, paths, SIZE)) == {0}
    write_antialiased(masks / "00000.png")
    with pytest.raises(DataError, match=r"masks/00000\.png: looks anti-aliased"):
        load_annotations(masks, paths, SIZE)
    with pytest.raises(DataError, match=r"masks/00000\.png: looks anti-aliased"):
        load_annotations(masks / "00000.png", paths, SIZE)  # a single mask file too
    grey = np.where(two_objects(16, 16) > 0, 255, 0).astype(np.uint8)  # a DAVIS 2016 mask, resized bilinearly
    Image.fromarray(grey, mode="L").resize((32, 32), Image.BILINEAR).save(masks / "00000.png")
    with pytest.raises(DataError, match=r"masks/00000\.png: looks anti-aliased"):
        load_annotations(masks, paths, SIZE)


def test_predict_refuses_mixed_modes_and_a_missing_first_mask(tmp_path: Path) -> None:
    paths, masks = _user_video(tmp_path)
    late = np.zeros(SIZE, np.uint8)
    late[20:28, 2:10] = 1
    write_mask(masks / "00002.png", late, "L")
    with pytest.raises(DataError, match=r"sequence 'frames' mixes mask modes: \S*masks/00000\.png is palette \(P\), "
                                        r"\S*masks/00002\.png is grayscale \(L\)"):
        load_annotations(masks, paths, SIZE)
    (masks / "00000.png").unlink()
    with pytest.raises(DataError, match=r"masks/00000\.png: sequence 'frames' has no mask for its first frame "
                                        r"\(its first mask is 00002\.png\)"):
        load_annotations(masks, paths, SIZE)


def test_score_refuses_ground_truth_mixing_modes_or_antialiased(tmp_path: Path) -> None:
    gt, pred = tmp_path / "gt/cars", tmp_path / "pred/cars"
    for t in range(4):
        write_mask(gt / f"{t:05d}.png", two_objects(*SIZE), "P")
        write_mask(pred / f"{t:05d}.png", two_objects(*SIZE), "P")
    assert score_sequence_dir(gt, pred).objects[0].j.tolist() == [1.0, 1.0]
    write_antialiased(gt / "00000.png")
    with pytest.raises(DataError, match=r"gt/cars/00000\.png: looks anti-aliased"):
        score_sequence_dir(gt, pred)
    write_mask(gt / "00000.png", two_objects(*SIZE), "P")
    write_mask(gt / "00002.png", two_objects(*SIZE), "L")
    with pytest.raises(DataError, match=r"sequence 'cars' mixes mask modes: \S*cars/00000\.png is palette \(P\), "
                                        r"\S*cars/00002\.png is grayscale \(L\)"):
        score_sequence_dir(gt, pred)


def test_synthetic_generator_masks_never_look_antialiased() -> None:
    spec = SyntheticSpec(videos=6, frames=6, height=64, width=64, min_objects=8, max_objects=12, seed=3)
    for index in range(spec.videos):
        for mask in generate_video(spec, index).masks:
            assert not antialiasing_evidence(mask).antialiased


REAL_FOLDERS = [SHARED_DATA / "davis2016-train-240p", SHARED_DATA / "davis2016-sample-480p"]


def test_every_real_mask_passes_and_real_shapes_make_no_false_positive() -> None:
    """Every real DAVIS 2016 sequence reads through the checked source; their masks, stacked into
    multi-object palette masks (real shapes touching and overlapping, up to 12 objects), pass too."""
    folders = [f for f in REAL_FOLDERS if f.is_dir()]
    if not folders:
        pytest.skip(f"real DAVIS data absent (neither {REAL_FOLDERS[0]} nor {REAL_FOLDERS[1]} found)")
    start = time.perf_counter()
    firsts = []
    for folder in folders:
        source = open_source("davis", str(folder))
        for name in source.list_videos():
            record = source.read(name, PLAIN)  # every mask: mode, first mask, anti-aliasing
            assert record.annotated[0] == 0 and record.frame_objects[0] == [1]
            firsts.extend(record.mask(i) for i in record.annotated[:: max(1, len(record.annotated) // 4)])
    rng = np.random.default_rng(0)
    shape = firsts[0].shape
    same = [m for m in firsts if m.shape == shape]
    for trial in range(60):
        stacked = np.zeros(shape, np.uint8)
        count = 2 + trial % 11
        for k, pick in enumerate(rng.choice(len(same), count, replace=False)):
            stacked[np.roll(same[pick], int(rng.integers(-40, 40)), axis=1) > 0] = k + 1
        evidence = antialiasing_evidence(stacked)
        assert not evidence.antialiased, (trial, evidence)
    assert time.perf_counter() - start < 30
