"""Pictures of an evaluation: a J&F bar chart, and per sequence an overlay strip and an animated GIF.

Every function returns the paths it wrote, so a caller can log them (e.g. as MLflow artifacts).
Files are written to a temporary name and renamed, so a reader never sees half a picture.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import cv2
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image, ImageDraw

from components.evaluation.masks import (
    VOID_ID,
    list_frames,
    read_label_map,
    resolve_annotation_root,
    resolve_image_root,
)
from components.evaluation.protocol import EvaluationResult, SequenceScore

CAPTION_HEIGHT = 14
_VOID_COLOUR = np.array([224, 224, 224], dtype=np.float32)


def object_colour(object_id: int) -> tuple[int, int, int]:
    """Colour of an object id in the DAVIS / PASCAL VOC palette (1 dark red, 2 green, 3 olive, ...)."""
    red = green = blue = 0
    label = object_id
    for shift in range(7, -1, -1):
        red |= ((label >> 0) & 1) << shift
        green |= ((label >> 1) & 1) << shift
        blue |= ((label >> 2) & 1) << shift
        label >>= 3
    return red, green, blue


def overlay(image: np.ndarray, labels: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Objects of an id map blended over an RGB image (H, W, 3 uint8), outlined in their colour.

    Void pixels (255) are greyed; background is left as it is.
    """
    out = image.astype(np.float32)
    void = labels == VOID_ID
    out[void] = (1 - alpha) * out[void] + alpha * _VOID_COLOUR
    for object_id in np.unique(labels):
        if object_id == 0 or object_id == VOID_ID:
            continue
        mask = labels == object_id
        colour = np.array(object_colour(int(object_id)), dtype=np.float32)
        out[mask] = (1 - alpha) * out[mask] + alpha * colour
        contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(out, contours, -1, tuple(float(c) for c in colour), thickness=1)
    return np.clip(out, 0, 255).astype(np.uint8)


def plot_jf_per_sequence(result: EvaluationResult, path: Path) -> Path:
    """Bar chart of J&F-Mean per sequence, the global J&F as a dashed line; PNG at `path`."""
    names = [s.name for s in result.sequences]
    scores = [s.jf_mean for s in result.sequences]
    global_jf = result.global_metrics()["J&F-Mean"]
    figure = Figure(figsize=(max(6.0, 0.4 * len(names) + 2), 4.5), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    bars = axes.bar(range(len(names)), scores, color="#4c72b0")
    axes.axhline(global_jf, color="#c44e52", linestyle="--", label=f"global J&F {global_jf:.3f}")
    axes.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=8)
    axes.set_ylim(0, 1.05)
    axes.set_ylabel("J&F-Mean")
    axes.set_title(f"J&F per sequence ({len(names)} sequences, {len(result.objects)} objects)")
    if len(names) <= 40:
        axes.bar_label(bars, labels=[f"{s:.2f}" for s in scores], fontsize=7, padding=2)
    axes.legend(loc="lower right")
    return _atomic_write(Path(path), lambda tmp: figure.savefig(tmp, format="png", dpi=100))


def plot_jf_and_probe(jf: Mapping[str, float], probe_jf: Mapping[str, float], path: Path) -> Path:
    """Grouped bars per sequence: the model's J&F beside the probe's (keys alone); PNG at `path`."""
    names = sorted(jf)
    figure = Figure(figsize=(max(6.0, 0.5 * len(names) + 2), 4.5), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    positions = np.arange(len(names))
    axes.bar(positions - 0.2, [jf[n] for n in names], width=0.4, color="#4c72b0", label="J&F (model)")
    axes.bar(positions + 0.2, [probe_jf.get(n, float("nan")) for n in names], width=0.4, color="#dd8452",
             label="probe J&F (keys alone)")
    axes.set_xticks(positions, names, rotation=60, ha="right", fontsize=8)
    axes.set_ylim(0, 1.05)
    axes.set_ylabel("J&F-Mean")
    axes.set_title("J&F vs correspondence probe, per sequence")
    axes.legend(loc="upper right")
    return _atomic_write(Path(path), lambda tmp: figure.savefig(tmp, format="png", dpi=100))


def write_overlay_strip(
    score: SequenceScore,
    gt_seq_dir: Path,
    pred_seq_dir: Path,
    image_seq_dir: Path | None,
    path: Path,
    num_frames: int = 4,
    panel_width: int = 320,
) -> Path:
    """PNG with one row per chosen frame: prediction overlay, then ground-truth overlay beside it.

    Frames are spread evenly over the evaluated frames; captions give the frame's J and F
    (mean over objects).
    """
    picks = np.unique(np.linspace(0, len(score.frames) - 1, num_frames).round().astype(int))
    rows = []
    for index in picks:
        frame = score.frames[index]
        j = np.mean([o.j[index] for o in score.objects])
        f = np.mean([o.f[index] for o in score.objects])
        pred, gt = _frame_panels(frame, Path(gt_seq_dir), Path(pred_seq_dir), image_seq_dir, panel_width)
        caption = f"{frame} prediction  J {j:.2f} F {f:.2f}"
        rows.append(np.hstack([_caption(pred, caption), _caption(gt, "ground truth")]))
    strip = Image.fromarray(np.vstack(rows))
    return _atomic_write(Path(path), lambda tmp: strip.save(tmp, format="PNG", optimize=True))


def write_overlay_gif(
    gt_seq_dir: Path,
    pred_seq_dir: Path,
    image_seq_dir: Path | None,
    path: Path,
    panel_width: int = 240,
    max_frames: int = 50,
    fps: float = 10.0,
) -> Path:
    """Animated GIF of [prediction | ground truth] overlays over the frames that have a prediction.

    Long sequences are subsampled to `max_frames` (GIFs of real footage cost ~40 KB a frame).
    """
    gt_seq_dir, pred_seq_dir = Path(gt_seq_dir), Path(pred_seq_dir)
    frames = [name for name in list_frames(gt_seq_dir) if (pred_seq_dir / f"{name}.png").is_file()]
    if not frames:
        raise ValueError(f"no predicted frames of {gt_seq_dir.name} in {pred_seq_dir}")
    stride = -(-len(frames) // max_frames)
    images = []
    for frame in frames[::stride]:
        pred, gt = _frame_panels(frame, gt_seq_dir, pred_seq_dir, image_seq_dir, panel_width)
        images.append(Image.fromarray(np.hstack([_caption(pred, f"{frame} prediction"), _caption(gt, "ground truth")])))
    duration = int(round(1000 * stride / fps))

    def save(tmp: Path) -> None:
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], duration=duration, loop=0)

    return _atomic_write(Path(path), save)


def default_report_dir(pred_dir: Path) -> Path:
    """Where reports go by default: a folder beside the predictions, `<pred_dir>_report`."""
    pred_dir = Path(pred_dir).resolve()
    return pred_dir.parent / f"{pred_dir.name}_report"


def write_reports(
    result: EvaluationResult,
    gt_dir: Path,
    pred_dir: Path,
    out_dir: Path | None = None,
    image_dir: Path | None = None,
    sequences: Sequence[str] | None = None,
) -> list[Path]:
    """All pictures of an evaluation; returns the paths written (bar chart first).

    `image_dir` holds <sequence>/<frame>.jpg; by default the JPEGImages folder beside the
    ground truth's Annotations, and a grey canvas where no image is found. `sequences` limits
    the per-sequence pictures (all by default).
    """
    out = Path(out_dir) if out_dir is not None else default_report_dir(Path(pred_dir))
    out.mkdir(parents=True, exist_ok=True)
    gt_root = resolve_annotation_root(Path(gt_dir))
    image_root = Path(image_dir) if image_dir is not None else resolve_image_root(gt_root)
    written = [plot_jf_per_sequence(result, out / "jf_per_sequence.png")]
    wanted = set(sequences) if sequences is not None else None
    for score in result.sequences:
        if wanted is not None and score.name not in wanted:
            continue
        gt_seq, pred_seq = gt_root / score.name, Path(pred_dir) / score.name
        image_seq = image_root / score.name if image_root is not None else None
        written.append(write_overlay_strip(score, gt_seq, pred_seq, image_seq, out / f"{score.name}_strip.png"))
        written.append(write_overlay_gif(gt_seq, pred_seq, image_seq, out / f"{score.name}_overlay.gif"))
    return written


def _frame_panels(
    frame: str, gt_seq_dir: Path, pred_seq_dir: Path, image_seq_dir: Path | None, panel_width: int
) -> tuple[np.ndarray, np.ndarray]:
    """Prediction and ground-truth overlays of one frame, scaled to `panel_width`."""
    gt = read_label_map(gt_seq_dir / f"{frame}.png")
    pred = read_label_map(pred_seq_dir / f"{frame}.png")
    size = (panel_width, max(1, round(gt.shape[0] * panel_width / gt.shape[1])))  # width, height
    image = cv2.resize(_load_image(image_seq_dir, frame, gt.shape), size, interpolation=cv2.INTER_AREA)
    small = [cv2.resize(labels.astype(np.uint16), size, interpolation=cv2.INTER_NEAREST) for labels in (pred, gt)]
    return overlay(image, small[0]), overlay(image, small[1])


def _load_image(image_seq_dir: Path | None, frame: str, shape: tuple[int, ...]) -> np.ndarray:
    """RGB frame resized to the mask's size; a mid-grey canvas when there is no image."""
    if image_seq_dir is not None:
        for suffix in (".jpg", ".jpeg", ".png"):
            candidate = Path(image_seq_dir) / f"{frame}{suffix}"
            if candidate.is_file():
                with Image.open(candidate) as image:
                    rgb = np.array(image.convert("RGB"))
                if rgb.shape[:2] != shape[:2]:
                    rgb = cv2.resize(rgb, (shape[1], shape[0]), interpolation=cv2.INTER_AREA)
                return rgb
    return np.full((shape[0], shape[1], 3), 128, dtype=np.uint8)


def _caption(panel: np.ndarray, text: str) -> np.ndarray:
    """The panel with a black caption band above it."""
    band = Image.new("RGB", (panel.shape[1], CAPTION_HEIGHT))
    ImageDraw.Draw(band).text((3, 1), text, fill=(255, 255, 255))
    return np.vstack([np.array(band), panel])


def _atomic_write(path: Path, write: Callable[[Path], None]) -> Path:
    """Call `write` on a temporary file beside `path`, then rename it to `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    try:
        write(Path(temporary))
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path
