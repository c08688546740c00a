"""The one overlay renderer: masks drawn over frames for evaluation reports, `predict --overlay` and training previews.

Each object gets a translucent fill and a solid 2-px contour (one pixel outside its edge, one inside)
in its DAVIS palette colour, so prediction and ground truth stay readable on textured frames. Masks
are shrunk to a panel without losing objects: one smaller than a panel pixel keeps one pixel, and
its contour makes that a 3x3 block. Report pictures put prediction and ground truth side by side
with the frame's J and F; strips show the worst frames of a sequence; clips go to a GIF and, for
real footage, an MP4 (OpenCV, mp4v) beside it.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw

from components.data.palette import object_colour
from components.evaluation.masks import VOID_ID, list_frames, read_label_map
from components.evaluation.protocol import SequenceScore

CAPTION_HEIGHT = 14
FILL_ALPHA = 0.35  # how much of the object's colour the fill mixes in
CONTOUR_PX = 2  # one pixel outside the mask's edge, one inside
MP4_FOURCC = "mp4v"
_VOID_COLOUR = np.array([224, 224, 224], dtype=np.float32)
_KERNEL = np.ones((3, 3), dtype=np.uint8)




def contour_band(mask: np.ndarray) -> np.ndarray:
    """The 2-px band around a boolean mask's edge: dilated minus eroded (a 1-pixel mask gives a 3x3 block)."""
    grown = cv2.dilate(mask.astype(np.uint8), _KERNEL)
    shrunk = cv2.erode(mask.astype(np.uint8), _KERNEL, borderType=cv2.BORDER_CONSTANT, borderValue=0)
    return (grown > 0) & ~(shrunk > 0)


def draw_masks(image: np.ndarray, labels: np.ndarray, fill_alpha: float = FILL_ALPHA) -> np.ndarray:
    """Objects of an id map (H, W) over an RGB image (H, W, 3 uint8): translucent fill, solid contour.

    Void pixels (255) are greyed; background is left as it is. Contours are drawn after every fill,
    so a neighbour's fill never hides an edge.
    """
    out = image.astype(np.float32)
    void = labels == VOID_ID
    out[void] = (1 - fill_alpha) * out[void] + fill_alpha * _VOID_COLOUR
    ids = [int(i) for i in np.unique(labels) if i != 0 and i != VOID_ID]
    masks = {i: labels == i for i in ids}
    for object_id, mask in masks.items():
        out[mask] = (1 - fill_alpha) * out[mask] + fill_alpha * np.array(object_colour(object_id), np.float32)
    for object_id, mask in masks.items():
        out[contour_band(mask)] = object_colour(object_id)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def fit_labels(labels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """An id map resized to `size` (width, height) by nearest neighbour, keeping every object.

    An object that nearest sampling drops (smaller than a target pixel) gets the pixel it covers most.
    """
    width, height = size
    if labels.shape[1] == width and labels.shape[0] == height:
        return labels
    small = cv2.resize(labels.astype(np.uint16), size, interpolation=cv2.INTER_NEAREST)
    kept = set(np.unique(small).tolist())
    for object_id in np.unique(labels):
        if object_id == 0 or object_id == VOID_ID or int(object_id) in kept:
            continue
        cover = cv2.resize((labels == object_id).astype(np.float32), size, interpolation=cv2.INTER_AREA)
        small[np.unravel_index(int(np.argmax(cover)), cover.shape)] = object_id
    return small


def panel_size(shape: tuple[int, ...], width: int) -> tuple[int, int]:
    """(width, height) of a panel `width` pixels wide with the aspect ratio of an (H, W, ...) array."""
    return width, max(1, round(shape[0] * width / shape[1]))


def overlay_panel(image: np.ndarray, labels: np.ndarray, width: int | None = None) -> np.ndarray:
    """`draw_masks` of a frame, first shrunk (or grown) to `width` pixels; None keeps the frame's size."""
    if width is not None and width != labels.shape[1]:
        size = panel_size(labels.shape, width)
        shrinking = width < labels.shape[1]
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
        labels = fit_labels(labels, size)
    return draw_masks(image, labels)


def caption(panel: np.ndarray, text: str) -> np.ndarray:
    """The panel with a black caption band above it."""
    band = Image.new("RGB", (panel.shape[1], CAPTION_HEIGHT))
    ImageDraw.Draw(band).text((3, 1), text, fill=(255, 255, 255))
    return np.vstack([np.array(band), panel])


def frame_scores(score: SequenceScore) -> dict[str, tuple[float, float]]:
    """Frame name -> (J, F), each the mean over the sequence's objects, for every evaluated frame."""
    return {frame: (float(np.mean([o.j[i] for o in score.objects])), float(np.mean([o.f[i] for o in score.objects])))
            for i, frame in enumerate(score.frames)}


def worst_frames(score: SequenceScore, count: int) -> list[str]:
    """The `count` evaluated frames with the lowest (J + F) / 2, in frame order."""
    scores = frame_scores(score)
    order = sorted(range(len(score.frames)), key=lambda i: (sum(scores[score.frames[i]]), i))
    return [score.frames[i] for i in sorted(order[:count])]


def comparison(frame: str, gt_seq_dir: Path, pred_seq_dir: Path, image_seq_dir: Path | None, panel_width: int,
               scores: dict[str, tuple[float, float]] | None = None) -> np.ndarray:
    """[prediction | ground truth] of one frame, each captioned; the prediction's caption gives J and F."""
    gt = read_label_map(Path(gt_seq_dir) / f"{frame}.png")
    pred = read_label_map(Path(pred_seq_dir) / f"{frame}.png")
    image = load_image(image_seq_dir, frame, gt.shape)
    text = f"{frame} prediction"
    if scores is not None and frame in scores:
        text += "  J {:.2f} F {:.2f}".format(*scores[frame])
    return np.hstack([caption(overlay_panel(image, pred, panel_width), text),
                      caption(overlay_panel(image, gt, panel_width), "ground truth")])


def write_overlay_strip(score: SequenceScore, gt_seq_dir: Path, pred_seq_dir: Path, image_seq_dir: Path | None,
                        path: Path, num_frames: int = 4, panel_width: int = 320) -> Path:
    """PNG with one row per chosen frame, [prediction | ground truth]: the sequence's worst frames by J&F."""
    scores = frame_scores(score)
    rows = [comparison(frame, gt_seq_dir, pred_seq_dir, image_seq_dir, panel_width, scores)
            for frame in worst_frames(score, num_frames)]
    strip = Image.fromarray(np.vstack(rows))
    return atomic_write(Path(path), lambda tmp: strip.save(tmp, format="PNG", optimize=True))


def comparison_frames(gt_seq_dir: Path, pred_seq_dir: Path, image_seq_dir: Path | None, panel_width: int,
                      score: SequenceScore | None = None, stride: int = 1) -> Iterator[np.ndarray]:
    """[prediction | ground truth] pictures of every `stride`-th frame that has both a prediction and ground truth."""
    frames = predicted_frames(gt_seq_dir, pred_seq_dir)
    scores = frame_scores(score) if score is not None else None
    for frame in frames[::stride]:
        yield comparison(frame, gt_seq_dir, pred_seq_dir, image_seq_dir, panel_width, scores)


def predicted_frames(gt_seq_dir: Path, pred_seq_dir: Path) -> list[str]:
    """Frames of the ground truth that have a prediction; ValueError when none has."""
    frames = [name for name in list_frames(Path(gt_seq_dir)) if (Path(pred_seq_dir) / f"{name}.png").is_file()]
    if not frames:
        raise ValueError(f"no predicted frames of {Path(gt_seq_dir).name} in {pred_seq_dir}")
    return frames


def write_overlay_gif(gt_seq_dir: Path, pred_seq_dir: Path, image_seq_dir: Path | None, path: Path,
                      panel_width: int = 240, max_frames: int = 50, fps: float = 10.0,
                      score: SequenceScore | None = None) -> Path:
    """Animated GIF of [prediction | ground truth] over the predicted frames, at most `max_frames` (evenly spaced).

    GIFs of real footage cost ~40 KB a frame, hence the cap; the MP4 (`write_overlay_mp4`) keeps every frame.
    """
    stride = -(-len(predicted_frames(gt_seq_dir, pred_seq_dir)) // max_frames)
    images = [Image.fromarray(f) for f in comparison_frames(gt_seq_dir, pred_seq_dir, image_seq_dir, panel_width,
                                                             score, stride)]
    return atomic_write(Path(path), lambda tmp: save_gif(images, tmp, int(round(1000 * stride / fps))))


def write_overlay_mp4(gt_seq_dir: Path, pred_seq_dir: Path, image_seq_dir: Path | None, path: Path,
                      panel_width: int = 320, fps: float = 10.0, score: SequenceScore | None = None) -> Path:
    """MP4 (mp4v) of [prediction | ground truth] over every predicted frame, for real videos."""
    writer = Mp4Writer(fps)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    try:
        for picture in comparison_frames(gt_seq_dir, pred_seq_dir, image_seq_dir, panel_width, score):
            writer.add(picture, Path(path).parent)
        temporary = writer.close()
        os.replace(temporary, path)
    finally:
        writer.discard()
    return Path(path)


def write_sequence_overlays(score: SequenceScore, gt_seq_dir: Path, pred_seq_dir: Path, image_seq_dir: Path | None,
                            out_dir: Path, mp4: bool = False) -> list[Path]:
    """A sequence's strip of worst frames and its GIF (and with `mp4`, its MP4) under `out_dir`."""
    out_dir = Path(out_dir)
    paths = [write_overlay_strip(score, gt_seq_dir, pred_seq_dir, image_seq_dir, out_dir / f"{score.name}_strip.png"),
             write_overlay_gif(gt_seq_dir, pred_seq_dir, image_seq_dir, out_dir / f"{score.name}_overlay.gif",
                               score=score)]
    if mp4:
        paths.append(write_overlay_mp4(gt_seq_dir, pred_seq_dir, image_seq_dir, out_dir / f"{score.name}_overlay.mp4",
                                       score=score))
    return paths


def load_image(image_seq_dir: Path | None, frame: str, shape: tuple[int, ...]) -> np.ndarray:
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


def save_gif(images: list[Image.Image], path: Path, duration_ms: int) -> None:
    """An endlessly looping GIF of `images`, each shown `duration_ms`."""
    images[0].save(path, format="GIF", save_all=True, append_images=images[1:], duration=duration_ms, loop=0)


class Mp4Writer:
    """Streams RGB pictures into a hidden temporary MP4 (mp4v); `close` returns it for the caller to rename.

    The size is the first picture's, rounded down to even (players expect even sizes); later pictures are
    cropped or padded to it.
    """

    def __init__(self, fps: float) -> None:
        self.fps = fps
        self.path: Path | None = None
        self.size: tuple[int, int] | None = None  # width, height
        self.frames = 0
        self._writer: cv2.VideoWriter | None = None

    def add(self, picture: np.ndarray, folder: Path) -> None:
        """Append one H, W, 3 uint8 RGB picture; the first one opens the file in `folder`."""
        if self._writer is None:
            self.size = (max(2, picture.shape[1] // 2 * 2), max(2, picture.shape[0] // 2 * 2))
            handle, name = tempfile.mkstemp(prefix=".overlay.", suffix=".tmp.mp4", dir=folder)
            os.close(handle)
            self.path = Path(name)
            self._writer = cv2.VideoWriter(name, cv2.VideoWriter_fourcc(*MP4_FOURCC), self.fps, self.size)
            if not self._writer.isOpened():
                raise OSError(f"OpenCV cannot write {MP4_FOURCC} video to {name}")
        width, height = self.size
        frame = np.zeros((height, width, 3), dtype=np.uint8)
        h, w = min(height, picture.shape[0]), min(width, picture.shape[1])
        frame[:h, :w] = picture[:h, :w]
        self._writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        self.frames += 1

    def close(self) -> Path:
        """Finish the file and return its (temporary) path."""
        if self._writer is None or self.path is None:
            raise ValueError("no pictures were added to the MP4")
        self._writer.release()
        self._writer = None
        os.chmod(self.path, 0o644)
        path, self.path = self.path, None
        return path

    def discard(self) -> None:
        """Drop an unfinished file (nothing happens after `close`)."""
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        if self.path is not None:
            self.path.unlink(missing_ok=True)
            self.path = None


class OverlayClip:
    """Collects one sequence's overlays as it is predicted: a GIF of at most `max_frames` and an MP4 of every frame.

    `predict --overlay` feeds it (frame, labels) as frames come out of the model; nothing waits for the end.
    """

    def __init__(self, total: int, folder: Path, max_frames: int = 60, width: int = 320, fps: float = 24.0) -> None:
        self.stride = max(1, math.ceil(total / max_frames))
        self.folder = Path(folder)  # where the temporary files go: beside their final names
        self.width = width
        self.fps = fps
        self.images: list[Image.Image] = []
        self.mp4 = Mp4Writer(fps)

    def add(self, index: int, frame: np.ndarray, labels: np.ndarray) -> None:
        """One predicted frame (RGB H, W, 3 and its id map)."""
        panel = overlay_panel(frame, labels, self.width if labels.shape[1] > self.width else None)
        self.mp4.add(panel, self.folder)
        if index % self.stride == 0:
            self.images.append(Image.fromarray(panel))

    def save_temporary(self) -> tuple[Path, Path]:
        """Write the GIF and finish the MP4 as hidden temporary files; returns (gif, mp4) for the caller to rename."""
        duration = int(round(1000 * self.stride / self.fps))
        gif = atomic_temporary(self.folder, ".gif", lambda tmp: save_gif(self.images, tmp, duration))
        return gif, self.mp4.close()

    def discard(self) -> None:
        """Remove an unfinished MP4."""
        self.mp4.discard()


def atomic_temporary(folder: Path, suffix: str, write: Callable[[Path], None]) -> Path:
    """A hidden file in `folder` written by `write` (removed again if it fails); the caller renames it."""
    handle, temporary = tempfile.mkstemp(prefix=".overlay.", suffix=f"{suffix}.tmp", dir=folder)
    os.close(handle)
    try:
        write(Path(temporary))
        os.chmod(temporary, 0o644)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return Path(temporary)


def atomic_write(path: Path, write: Callable[[Path], None]) -> Path:
    """Call `write` on a temporary file beside `path`, then rename it to `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.replace(atomic_temporary(path.parent, path.suffix, write), path)
    return path
