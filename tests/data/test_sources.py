"""Each source reads its real layout: names, frames, masks, annotation interval, late objects."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from components.data.sources import ReadOptions, open_source
from components.errors import DataError
from tests.data.conftest import make_static_per_class, make_static_two_folders

PLAIN = ReadOptions()


def test_davis2016_binary_masks_become_object_one(davis16: Path) -> None:
    source = open_source("davis", str(davis16))
    assert source.list_videos() == ["alpha", "beta", "gamma"]
    record = source.read("beta", PLAIN)
    assert record.num_frames == 5 and record.annotated == list(range(5))
    assert record.frames[2] == (davis16 / "JPEGImages/beta/00002.jpg").read_bytes()  # passed through untouched
    raw = np.asarray(Image.open(davis16 / "Annotations/beta/00002.png"))
    assert np.array_equal(record.mask(2), (raw == 255).astype(np.uint8))
    assert record.frame_objects[0] == [1] and record.annotation_interval == 1


def test_davis2017_indexed_masks_with_resolution_level_and_split(davis17: Path) -> None:
    (davis17 / "ImageSets/2017").mkdir(parents=True)
    (davis17 / "ImageSets/2017/train.txt").write_text("trio\n")
    assert open_source("davis", str(davis17)).list_videos() == ["duo", "trio"]
    source = open_source("davis", str(davis17), split="train")
    assert source.list_videos() == ["trio"]
    record = source.read("trio", PLAIN)
    assert record.frame_objects[0] == [1, 2]
    assert set(np.unique(record.mask(0))) == {0, 1, 2}


def test_davis_split_naming_a_missing_sequence_is_an_error(davis16: Path) -> None:
    (davis16 / "ImageSets/480p").mkdir(parents=True)
    (davis16 / "ImageSets/480p/val.txt").write_text("/JPEGImages/480p/zeta/00000.jpg /Annotations/480p/zeta/00000.png\n")
    with pytest.raises(DataError, match=r"val.txt: lists sequence 'zeta'"):
        open_source("davis", str(davis16), split="val")


def test_davis_void_pixels_are_kept_as_255(tmp_path: Path, davis17: Path) -> None:
    path = davis17 / "Annotations/480p/duo/00003.png"
    ids = np.asarray(Image.open(path)).copy()
    ids[0, :5] = 255
    image = Image.fromarray(ids, mode="P")
    image.putpalette(Image.open(path).getpalette())
    image.save(path)
    record = open_source("davis", str(davis17)).read("duo", PLAIN)
    assert (record.mask(3)[0, :5] == 255).all() and record.frame_objects[3] == [1, 2]


def test_youtube_vos_sparse_annotations_and_late_objects(ytvos: Path) -> None:
    source = open_source("youtube-vos", str(ytvos))
    assert source.list_videos() == ["early", "late"]
    record = source.read("late", PLAIN)
    assert record.frame_names == ["00000", "00005", "00010", "00015", "00020", "00025"]
    assert record.annotation_interval == 5
    assert record.frame_objects[:3] == [[1], [1], [1, 2]]  # object 2 first appears in the third stored frame
    assert open_source("youtube-vos", str(ytvos / "train")).list_videos() == ["early", "late"]


def test_youtube_vos_mask_id_not_in_meta_is_antialiasing(ytvos: Path) -> None:
    path = ytvos / "train/Annotations/early/00010.png"
    ids = np.asarray(Image.open(path)).copy()
    ids[0, 0] = 7
    image = Image.fromarray(ids, mode="P")
    image.putpalette(Image.open(path).getpalette())
    image.save(path)
    with pytest.raises(DataError, match=r"early/00010.png: object ids \[7\] are not in the palette \[1, 2\]"):
        open_source("youtube-vos", str(ytvos)).read("early", PLAIN)


def test_static_two_folders_thresholds_soft_masks(tmp_path: Path) -> None:
    source = open_source("static", str(make_static_two_folders(tmp_path / "duts")))
    assert source.list_videos() == ["img_0", "img_1", "img_2"]
    record = source.read("img_1", PLAIN)
    assert record.num_frames == 1 and record.annotated == [0] and record.frame_objects == [[1]]
    mask = record.mask(0)
    assert mask[9].sum() == 0 and mask[10:30, 5:20].all()  # the 100-valued soft edge falls below 128


def test_static_folder_per_class(tmp_path: Path) -> None:
    source = open_source("static", str(make_static_per_class(tmp_path / "fss")))
    assert source.list_videos() == ["apple/1", "apple/2", "boat/1", "boat/2"]
    assert source.read("boat/2", ReadOptions(short_side=16)).height == 16


def test_static_image_without_mask_is_reported(tmp_path: Path) -> None:
    root = make_static_per_class(tmp_path / "fss")
    (root / "apple/2.png").unlink()
    source = open_source("static", str(root))
    with pytest.raises(DataError, match=r"apple/2.jpg: image without its mask"):
        source.read("apple/2", PLAIN)


def test_unknown_layouts_and_missing_folders(tmp_path: Path) -> None:
    (tmp_path / "random").mkdir()
    (tmp_path / "random/notes.txt").write_text("hello")
    for kind in ("davis", "youtube-vos", "static"):
        with pytest.raises(DataError, match="unknown layout"):
            open_source(kind, str(tmp_path / "random"))
        with pytest.raises(DataError, match="no such folder"):
            open_source(kind, str(tmp_path / "absent"))


def test_synthetic_source_keeps_motion_and_is_reproducible() -> None:
    source = open_source("synthetic", "videos=3,frames=5,size=32,seed=4")
    assert source.list_videos() == ["synthetic-00000", "synthetic-00001", "synthetic-00002"]
    a, b = source.read("synthetic-00001", PLAIN), source.read("synthetic-00001", PLAIN)
    assert a.digest() == b.digest() and a.num_frames == 5 and (a.height, a.width) == (32, 32)
    assert set(a.extras["motion"]["objects"]) == {str(i) for i in a.object_ids}
    with pytest.raises(DataError, match="unknown key 'colour'"):
        open_source("synthetic", "colour=3")


def test_real_davis_sample_reads(davis_sample: Path) -> None:
    source = open_source("davis", str(davis_sample))
    assert source.list_videos() == ["bear", "boat", "swing"]
    record = source.read("swing", PLAIN)
    assert (record.height, record.width) == (480, 854) and record.num_frames == 60
    assert record.frames[0] == (davis_sample / "JPEGImages/swing/00000.jpg").read_bytes()
    assert record.object_ids == [1]


def test_davis2017_id_outside_the_first_frame_palette_is_antialiasing(davis17: Path) -> None:
    path = davis17 / "Annotations/480p/trio/00004.png"
    ids = np.asarray(Image.open(path)).copy()
    ids[10, 10:14] = 9
    image = Image.fromarray(ids, mode="P")
    image.putpalette(Image.open(path).getpalette())
    image.save(path)
    with pytest.raises(DataError, match=r"trio/00004.png: object ids \[9\] are not in the palette \[1, 2\] of the first"):
        open_source("davis", str(davis17)).read("trio", PLAIN)
