"""JPEG checks and the two mask conventions."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from components.data.codec import (
    check_jpeg,
    decode_mask,
    encode_jpeg,
    encode_mask,
    jpeg_size,
    read_annotation,
    resize_mask_short_side,
    resize_short_side,
)
from components.errors import DataError


def _png(array: np.ndarray, mode: str) -> bytes:
    buf = io.BytesIO()
    image = Image.fromarray(array, mode=mode if mode != "P" else "L")
    if mode == "P":
        image = image.convert("P")
        image.putdata(array.ravel().tolist())
    image.save(buf, format="PNG")
    return buf.getvalue()


def test_jpeg_size_reads_header_and_check_accepts_complete_file() -> None:
    data = encode_jpeg(np.full((21, 34, 3), 90, np.uint8))
    assert jpeg_size(data) == (21, 34)
    assert check_jpeg(data, "x.jpg") == (21, 34)


@pytest.mark.parametrize(
    "mangle, problem",
    [(lambda d: d[: len(d) // 2], "truncated"), (lambda d: b"GIF89a" + d[6:], "unreadable JPEG .not a JPEG"), (lambda d: d[:300] + b"\xff\xd9", "unreadable")],
)
def test_check_jpeg_rejects_bad_bytes(mangle, problem: str) -> None:
    rng = np.random.default_rng(0)
    data = encode_jpeg(rng.integers(0, 256, size=(64, 64, 3), dtype=np.uint8))
    with pytest.raises(DataError, match=f"bad.jpg: .*{problem}"):
        check_jpeg(mangle(data), "bad.jpg")


def test_grayscale_mask_is_davis2016_binary() -> None:
    values = np.array([[0, 255], [255, 0]], np.uint8)
    ids, convention = read_annotation(_png(values, "L"), "m.png")
    assert convention == "binary" and ids.tolist() == [[0, 1], [1, 0]]


def test_grayscale_mask_with_antialiased_values_is_rejected() -> None:
    values = np.array([[0, 128], [255, 0]], np.uint8)
    with pytest.raises(DataError, match=r"m.png: .*values \{128\}.*anti-aliased"):
        read_annotation(_png(values, "L"), "m.png")


def test_indexed_mask_keeps_ids_and_void() -> None:
    values = np.array([[0, 1], [2, 255]], np.uint8)
    ids, convention = read_annotation(_png(values, "P"), "m.png")
    assert convention == "indexed" and ids.tolist() == values.tolist()


def test_opaque_alpha_and_grey_rgb_masks_read_as_grayscale() -> None:
    values = np.array([[0, 255], [0, 0]], np.uint8)
    la = np.stack([values, np.full_like(values, 255)], axis=-1)
    rgb = np.stack([values] * 3, axis=-1)
    assert read_annotation(_png(la, "LA"), "a.png")[0].tolist() == [[0, 1], [0, 0]]
    assert read_annotation(_png(rgb, "RGB"), "b.png")[0].tolist() == [[0, 1], [0, 0]]
    rgb[0, 0] = (10, 0, 0)
    with pytest.raises(DataError, match="b.png: colour RGB mask"):
        read_annotation(_png(rgb, "RGB"), "b.png")


def test_mask_png_round_trip_and_nearest_resize_keeps_ids() -> None:
    ids = np.random.default_rng(0).integers(0, 4, size=(60, 90)).astype(np.uint8)
    assert np.array_equal(decode_mask(encode_mask(ids)), ids)
    small = resize_mask_short_side(ids, 30)
    assert small.shape == (30, 45) and set(np.unique(small)) <= set(np.unique(ids))
    assert resize_short_side(np.zeros((60, 90, 3), np.uint8), 30).shape == (30, 45, 3)
    assert resize_short_side(np.zeros((20, 90, 3), np.uint8), 30).shape == (20, 90, 3)  # never upscales
