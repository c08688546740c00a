"""Reading DAVIS-style mask PNGs into object-id maps, and finding sequences and frames on disk.

Two mask formats exist: DAVIS 2016 grayscale PNGs with foreground 255 on background 0 (one
object), and DAVIS 2017 / YouTube-VOS indexed PNGs whose palette index is the object id, with
255 marking void pixels. Both become one integer map: 0 background, k object k, 255 void.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from components.data.mask_checks import check_not_antialiased, check_same_mode, first_mask_missing
from components.errors import DataError

VOID_ID = 255
_ID_MODES = {"P", "L", "I", "I;16", "I;16B", "I;16L", "1"}
_GREY_WITH_CHANNELS = {"LA", "RGB", "RGBA"}  # real DAVIS 2016 files include a few of these


def read_label_map(path: Path) -> np.ndarray:
    """Object-id map (H, W) of a mask PNG; raises DataError naming the file when it cannot be used.

    Indexed (P) images give their palette indices. A grayscale image holding only 0 and 255 is
    a DAVIS 2016 binary mask and becomes 0/1; any other grayscale image is read as object ids.
    Grey stored as LA/RGB/RGBA (equal colour channels, opaque) is read as grayscale: DAVIS 2016
    ships such files (bear/00077.png is LA). A map of ids that looks anti-aliased (many thin ids
    on object borders, e.g. a mask resized with bilinear interpolation) is refused.
    """
    try:
        with Image.open(path) as image:
            mode = image.mode
            labels = np.array(image)
    except FileNotFoundError:
        raise DataError(f"missing mask {path}") from None
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read mask {path}: {exc}") from None
    if mode in _GREY_WITH_CHANNELS:
        labels = _grey_channel(labels, path, mode)
        mode = "L"
    if mode not in _ID_MODES or labels.ndim != 2:
        raise DataError(f"{path}: mode {mode} is not a mask; expected an indexed or grayscale PNG")
    if mode == "1":
        return labels.astype(np.uint8)
    if mode == "L" and np.all((labels == 0) | (labels == 255)):
        return (labels == 255).astype(np.uint8)
    if labels.dtype != np.uint8:
        if labels.min() < 0:
            raise DataError(f"{path}: negative object ids")
        labels = labels.astype(np.int64)
    check_not_antialiased(labels, str(path))
    return labels


def mask_mode(path: Path) -> str:
    """The image mode of a mask PNG (`P`, `L`, `LA`, ...), read from its header only."""
    try:
        with Image.open(path) as image:
            return image.mode
    except FileNotFoundError:
        raise DataError(f"missing mask {path}") from None
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read mask {path}: {exc}") from None


def check_mask_files(paths: Sequence[Path], sequence: str, first_frame: Path | None = None) -> None:
    """One sequence's mask files agree: all palette or all grayscale, and (when `first_frame` is given)
    one of them is that frame's mask, matched by file stem. DataError naming the sequence and a file."""
    paths = sorted(Path(p) for p in paths)
    if not paths:
        return
    if first_frame is not None and not any(p.stem == first_frame.stem for p in paths):
        raise first_mask_missing(sequence, str(paths[0].parent / f"{first_frame.stem}.png"), paths[0].name)
    first = (str(paths[0]), mask_mode(paths[0]))
    for path in paths[1:]:
        check_same_mode(sequence, first, (str(path), mask_mode(path)))


def _grey_channel(pixels: np.ndarray, path: Path, mode: str) -> np.ndarray:
    """The grey channel of an opaque LA/RGB/RGBA image whose colour channels are all equal."""
    colour = pixels[..., :1] if mode == "LA" else pixels[..., :3]
    alpha = pixels[..., -1] if mode in ("LA", "RGBA") else None
    if (alpha is not None and np.any(alpha != 255)) or np.any(colour != colour[..., :1]):
        raise DataError(f"{path}: {mode} image with colour or transparency; save masks as indexed or grayscale PNG")
    return np.ascontiguousarray(colour[..., 0])


def resolve_annotation_root(gt_dir: Path) -> Path:
    """Folder holding <sequence>/<frame>.png: a DAVIS root's Annotations/480p or Annotations, or gt_dir."""
    gt_dir = Path(gt_dir)
    if not gt_dir.is_dir():
        raise DataError(f"ground-truth folder {gt_dir} does not exist")
    for candidate in (gt_dir / "Annotations" / "480p", gt_dir / "Annotations"):
        if candidate.is_dir() and list_sequences(candidate):
            return candidate
    return gt_dir


def resolve_image_root(annotation_root: Path) -> Path | None:
    """The JPEGImages folder matching an annotation folder (Annotations -> JPEGImages), if present."""
    parts = list(Path(annotation_root).resolve().parts)
    if "Annotations" not in parts:
        return None
    index = len(parts) - 1 - parts[::-1].index("Annotations")
    parts[index] = "JPEGImages"
    images = Path(*parts)
    return images if images.is_dir() else None


def list_sequences(root: Path) -> list[str]:
    """Names of the sub-folders of `root` that hold at least one PNG, sorted."""
    return sorted(p.name for p in Path(root).iterdir() if p.is_dir() and any(p.glob("*.png")))


def list_frames(sequence_dir: Path) -> list[str]:
    """Frame names (file stems) of the PNGs in a sequence folder, sorted as the toolkit sorts paths."""
    return sorted(p.stem for p in Path(sequence_dir).glob("*.png"))


def read_sequence_list(spec: str) -> list[str]:
    """Sequence names from a comma-separated list or from a text file with one name per line."""
    path = Path(spec)
    if path.is_file():
        names = [line.strip() for line in path.read_text().splitlines()]
    else:
        names = [name.strip() for name in spec.split(",")]
    names = [name for name in names if name]
    if not names:
        raise DataError(f"no sequence names in {spec!r}")
    return names
