"""Reading both DAVIS mask formats, and where the ground truth and frames are found."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from components.errors import DataError
from components.evaluation.masks import (
    read_label_map,
    read_sequence_list,
    resolve_annotation_root,
    resolve_image_root,
)
from tests.evaluation.masks_util import square, write_binary, write_indexed


def test_indexed_png_gives_palette_indices_with_void(tmp_path: Path) -> None:
    labels = square((8, 8), 1, 1, 3, 1) | square((8, 8), 4, 4, 3, 2)
    labels[0, :] = 255
    assert np.array_equal(read_label_map(write_indexed(tmp_path / "a.png", labels)), labels)


def test_grayscale_0_255_is_one_object(tmp_path: Path) -> None:
    mask = square((8, 8), 2, 2, 3)
    labels = read_label_map(write_binary(tmp_path / "a.png", mask))
    assert labels.dtype == np.uint8 and np.array_equal(labels, mask)


def test_grayscale_with_other_values_is_read_as_ids(tmp_path: Path) -> None:
    labels = square((8, 8), 1, 1, 3, 1) | square((8, 8), 4, 4, 3, 2)
    Image.fromarray(labels, mode="L").save(tmp_path / "a.png")
    assert np.array_equal(read_label_map(tmp_path / "a.png"), labels)


def test_opaque_grey_la_and_rgba_are_grayscale(tmp_path: Path) -> None:
    # DAVIS 2016 ships bear/00077.png as LA: grey + an opaque alpha
    mask = square((8, 8), 2, 2, 3).astype(np.uint8) * 255
    Image.fromarray(np.dstack([mask, np.full_like(mask, 255)]), mode="LA").save(tmp_path / "la.png")
    Image.fromarray(np.dstack([mask, mask, mask, np.full_like(mask, 255)]), mode="RGBA").save(tmp_path / "rgba.png")
    for name in ("la.png", "rgba.png"):
        assert np.array_equal(read_label_map(tmp_path / name), mask // 255)


def test_colour_or_transparent_masks_are_refused_by_name(tmp_path: Path) -> None:
    rgb = np.zeros((8, 8, 3), dtype=np.uint8)
    rgb[2:4, 2:4] = (128, 0, 0)
    Image.fromarray(rgb, mode="RGB").save(tmp_path / "colour.png")
    with pytest.raises(DataError, match="colour.png"):
        read_label_map(tmp_path / "colour.png")


def test_missing_and_corrupt_files_are_data_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="missing mask .*nothing.png"):
        read_label_map(tmp_path / "nothing.png")
    (tmp_path / "broken.png").write_bytes(b"not a png at all")
    with pytest.raises(DataError, match="broken.png"):
        read_label_map(tmp_path / "broken.png")


def test_annotation_root_of_a_davis_tree(tmp_path: Path) -> None:
    write_binary(tmp_path / "DAVIS" / "Annotations" / "480p" / "bear" / "00000.png", square((8, 8), 2, 2, 3))
    (tmp_path / "DAVIS" / "JPEGImages" / "480p" / "bear").mkdir(parents=True)
    root = resolve_annotation_root(tmp_path / "DAVIS")
    assert root == tmp_path / "DAVIS" / "Annotations" / "480p"
    assert resolve_annotation_root(root) == root  # already a folder of sequences
    assert resolve_image_root(root) == (tmp_path / "DAVIS" / "JPEGImages" / "480p").resolve()
    assert resolve_image_root(tmp_path) is None
    with pytest.raises(DataError, match="does not exist"):
        resolve_annotation_root(tmp_path / "elsewhere")


def test_sequence_list_from_names_or_file(tmp_path: Path) -> None:
    assert read_sequence_list("bear, boat") == ["bear", "boat"]
    listing = tmp_path / "val.txt"
    listing.write_text("bear\n\nswing\n")
    assert read_sequence_list(str(listing)) == ["bear", "swing"]
    with pytest.raises(DataError):
        read_sequence_list(" , ")
