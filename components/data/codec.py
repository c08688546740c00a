"""Encode, decode and check the two kinds of image the data plane stores: JPEG frames and id masks.

Frames are RGB uint8 arrays (H, W, 3); masks are uint8 arrays (H, W) of object ids, where 0 is
background and 255 marks "void" pixels (DAVIS 2017 / YouTube-VOS convention). Decoding uses OpenCV,
which releases the GIL, so background threads decode in parallel.
"""

from __future__ import annotations

import io

import cv2
import numpy as np
from PIL import Image

from components.data.mask_checks import check_not_antialiased
from components.errors import DataError

VOID_ID = 255
_SOF_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def jpeg_size(data: bytes) -> tuple[int, int] | None:
    """(height, width) read from a JPEG's start-of-frame header, or None when it has none."""
    if data[:2] != b"\xff\xd8":
        return None
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        if marker in _SOF_MARKERS and pos + 9 <= len(data):
            return int.from_bytes(data[pos + 5 : pos + 7], "big"), int.from_bytes(data[pos + 7 : pos + 9], "big")
        pos += 2 + length
    return None


def check_jpeg(data: bytes, where: str) -> tuple[int, int]:
    """Verify that `data` is a complete, decodable JPEG and return its (height, width).

    A truncated file still decodes in libjpeg (with grey fill), so the end-of-image marker is checked too.
    """
    size = jpeg_size(data)
    if size is None:
        raise DataError(f"{where}: unreadable JPEG (not a JPEG file: no JPEG header)")
    if not data.rstrip(b"\x00\r\n ").endswith(b"\xff\xd9"):
        raise DataError(f"{where}: truncated JPEG (no end-of-image marker)")
    # a reduced grey decode still runs the entropy decoder over every block, at a fraction of the cost
    if cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_REDUCED_GRAYSCALE_8) is None:
        raise DataError(f"{where}: unreadable JPEG (the decoder rejects it)")
    return size


def decode_jpeg(data: bytes) -> np.ndarray:
    """RGB uint8 (H, W, 3) from JPEG bytes."""
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise DataError("unreadable JPEG bytes")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def encode_jpeg(rgb: np.ndarray, quality: int = 90) -> bytes:
    """JPEG bytes of an RGB uint8 image (deterministic for equal input)."""
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise DataError("could not encode JPEG")
    return buf.tobytes()


def encode_mask(ids: np.ndarray) -> bytes:
    """Single-channel 8-bit PNG of an id mask; OpenCV decodes it straight back to ids."""
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(ids, dtype=np.uint8), [cv2.IMWRITE_PNG_COMPRESSION, 3])
    if not ok:
        raise DataError("could not encode mask PNG")
    return buf.tobytes()


def decode_mask(data: bytes) -> np.ndarray:
    """Id mask (H, W) uint8 from bytes written by `encode_mask`."""
    ids = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if ids is None or ids.ndim != 2:
        raise DataError("unreadable mask PNG bytes")
    return ids


def read_annotation(data: bytes, where: str) -> tuple[np.ndarray, str]:
    """Object ids (H, W) of a dataset's own mask file, and its convention (`binary` or `indexed`).

    `L` (grayscale) masks follow DAVIS 2016: 0 background, 255 the one object; any other value is
    anti-aliasing and an error. `P` (palette) masks hold the object id as the palette index, 255 void;
    one that looks anti-aliased (many thin ids on object borders) is an error too.
    """
    ids, convention, _ = read_annotation_mode(data, where)
    return ids, convention


def read_annotation_mode(data: bytes, where: str) -> tuple[np.ndarray, str, str]:
    """`read_annotation` plus the file's image mode (`P`, `L`, `LA`, ...), to tell mixed sequences apart."""
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except Exception as exc:  # PIL raises many types for corrupt files
        raise DataError(f"{where}: unreadable mask ({exc})") from None
    if image.mode == "P":
        ids = np.asarray(image, dtype=np.uint8)
        check_not_antialiased(ids, where)
        return ids, "indexed", "P"
    if image.mode in ("L", "1", "LA", "RGB", "RGBA"):
        values = _grey_values(image, where)
        stray = np.setdiff1d(np.unique(values), [0, 255])
        if stray.size:
            raise DataError(
                f"{where}: grayscale mask holds values {_short(stray)} besides 0 and 255 (anti-aliased edges?)"
            )
        return (values == 255).astype(np.uint8), "binary", image.mode
    raise DataError(f"{where}: unsupported mask mode {image.mode!r} (expected grayscale L or indexed P)")


def _grey_values(image: Image.Image, where: str) -> np.ndarray:
    """The single channel of a grayscale mask; an alpha channel is ignored (real DAVIS 2016 files
    include a few LA and RGBA masks), and an RGB mask must be grey (R = G = B)."""
    if image.mode in ("L", "1"):
        return np.asarray(image.convert("L"), dtype=np.uint8)
    array = np.asarray(image, dtype=np.uint8)
    if image.mode == "LA":
        return array[..., 0]
    rgb = array[..., :3]
    if not (np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2])):
        raise DataError(f"{where}: colour {image.mode} mask (expected grayscale L or indexed P)")
    return rgb[..., 0]


def read_soft_mask(data: bytes, where: str, threshold: int = 128) -> np.ndarray:
    """Binary object mask (H, W) of a salient-object mask (DUTS/ECSSD/FSS), thresholded at `threshold`."""
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except Exception as exc:
        raise DataError(f"{where}: unreadable mask ({exc})") from None
    values = np.asarray(image.convert("L"), dtype=np.uint8)
    return (values >= threshold).astype(np.uint8)


def resize_short_side(rgb: np.ndarray, short_side: int) -> np.ndarray:
    """Downscale so the shorter side is `short_side` (area interpolation); smaller images stay as they are."""
    height, width = rgb.shape[:2]
    size = _target_size(height, width, short_side)
    if size is None:
        return rgb
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def resize_mask_short_side(ids: np.ndarray, short_side: int) -> np.ndarray:
    """The mask counterpart of `resize_short_side` (nearest neighbour, ids preserved)."""
    height, width = ids.shape[:2]
    size = _target_size(height, width, short_side)
    if size is None:
        return ids
    return cv2.resize(ids, size, interpolation=cv2.INTER_NEAREST)


def _target_size(height: int, width: int, short_side: int) -> tuple[int, int] | None:
    short = min(height, width)
    if short <= short_side:
        return None
    scale = short_side / short
    return max(1, round(width * scale)), max(1, round(height * scale))  # cv2 wants (width, height)


def _short(values: np.ndarray, limit: int = 6) -> str:
    shown = ", ".join(str(int(v)) for v in values[:limit])
    return f"{{{shown}{', ...' if values.size > limit else ''}}}"
