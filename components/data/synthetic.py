"""Procedural VOS videos: textured objects that move, scale, rotate and occlude each other over a
panning textured background, with exact id masks and the true motion of every pixel.

Each video depends only on (seed, index), so any video can be regenerated alone. The generator keeps
every object's affine per frame (sprite pixel -> frame pixel) and the background's, which is what
`track_points` needs to give the true position and visibility of any point across frames.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import cv2
import numpy as np

GENERATOR_VERSION = "synthetic-v1"


@dataclass(frozen=True)
class SyntheticSpec:
    """How many videos to make and of what shape; `seed` fixes every one of them."""

    videos: int = 32
    frames: int = 24
    height: int = 96
    width: int = 96
    min_objects: int = 1
    max_objects: int = 3
    seed: int = 0

    def __post_init__(self) -> None:
        if self.videos < 1 or self.frames < 1:
            raise ValueError("synthetic: videos and frames must be >= 1")
        if min(self.height, self.width) < 16:
            raise ValueError("synthetic: height and width must be >= 16")
        if not 1 <= self.min_objects <= self.max_objects <= 254:
            raise ValueError("synthetic: need 1 <= min_objects <= max_objects")


@dataclass(frozen=True)
class SyntheticMotion:
    """The true geometry of a video: per-frame affines (T, 2, 3) from texture/sprite pixels to frame pixels."""

    background: np.ndarray  # T, 2, 3
    objects: dict[int, np.ndarray]  # object id -> T, 2, 3
    depth_order: tuple[int, ...]  # object ids, drawn bottom to top

    def to_json(self) -> dict:
        """Plain lists (exact float repr), stored in the Parquet row's `extras`."""
        return {
            "generator": GENERATOR_VERSION,
            "background": self.background.tolist(),
            "objects": {str(k): v.tolist() for k, v in self.objects.items()},
            "depth_order": list(self.depth_order),
        }

    @classmethod
    def from_json(cls, data: dict) -> "SyntheticMotion":
        return cls(
            background=np.asarray(data["background"], dtype=np.float64),
            objects={int(k): np.asarray(v, dtype=np.float64) for k, v in data["objects"].items()},
            depth_order=tuple(data["depth_order"]),
        )


@dataclass(frozen=True)
class SyntheticVideo:
    """Frames (T, H, W, 3) uint8 RGB, id masks (T, H, W) uint8, and the motion that made them."""

    frames: np.ndarray
    masks: np.ndarray
    motion: SyntheticMotion


@dataclass(frozen=True)
class PointTracks:
    """True positions (T, N, 2) as (x, y) frame pixels, visibility (T, N) bool, owner id (N) (0 = background)."""

    positions: np.ndarray
    visible: np.ndarray
    owner: np.ndarray


def generate_video(spec: SyntheticSpec, index: int) -> SyntheticVideo:
    """Video `index` of the set described by `spec` (reproducible; independent of the other videos)."""
    rng = np.random.default_rng([spec.seed, index, 0x5EED])
    h, w, t = spec.height, spec.width, spec.frames
    count = int(rng.integers(spec.min_objects, spec.max_objects + 1))
    texture = _texture(rng, 2 * h, 2 * w, saturation=0.5)
    background = _background_path(rng, h, w, t)
    sprites = [_sprite(rng, max(h, w)) for _ in range(count)]
    depth = tuple(int(i) + 1 for i in rng.permutation(count))
    best, best_score = None, -1.0
    for _ in range(20):  # redraw paths until every object shows at least half of itself in frame 0
        paths = {i + 1: _object_path(rng, h, w, t, sprites[i][1].shape[0]) for i in range(count)}
        motion = SyntheticMotion(background=background, objects=paths, depth_order=depth)
        first = _render(texture, sprites, motion, h, w, frame=0)[1]
        score = min((first == i).sum() / _full_area(motion, sprites, i) for i in paths)
        if score > best_score:
            best, best_score = motion, score
        if score >= 0.5:
            break
    motion = best
    rendered = [_render(texture, sprites, motion, h, w, frame=f) for f in range(t)]
    return SyntheticVideo(
        frames=np.stack([r[0] for r in rendered]),
        masks=np.stack([r[1] for r in rendered]),
        motion=motion,
    )


def track_points(motion: SyntheticMotion, masks: np.ndarray, points: np.ndarray, frame: int = 0) -> PointTracks:
    """Follow `points` (N, 2 as x, y pixels) of frame `frame` through every frame of the video.

    A point belongs to whatever `masks[frame]` shows under it; it is visible in frame t when it lies
    inside the frame and the mask there still shows its owner (not occluded, not off-screen).
    """
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    t, h, w = masks.shape
    owner = _lookup(masks[frame], points)
    positions = np.zeros((t, len(points), 2))
    for oid in np.unique(owner):
        affines = motion.background if oid == 0 else motion.objects[int(oid)]
        sel = owner == oid
        local = _apply(_invert(affines[frame]), points[sel])
        for f in range(t):
            positions[f, sel] = _apply(affines[f], local)
    visible = np.stack([_lookup(masks[f], positions[f], outside=-1) == owner for f in range(t)])
    return PointTracks(positions=positions, visible=visible, owner=owner)


def sample_points(masks: np.ndarray, object_id: int, count: int, rng: np.random.Generator, frame: int = 0) -> np.ndarray:
    """`count` pixel centres (x, y) drawn uniformly from `object_id`'s region in `masks[frame]`."""
    ys, xs = np.nonzero(masks[frame] == object_id)
    if len(xs) == 0:
        return np.zeros((0, 2))
    pick = rng.choice(len(xs), size=count, replace=len(xs) < count)
    return np.stack([xs[pick], ys[pick]], axis=1).astype(np.float64)


def parse_spec(text: str) -> SyntheticSpec:
    """`videos=32,frames=24,size=96,seed=0` -> SyntheticSpec (`size` sets height and width)."""
    values: dict[str, int] = {}
    for item in filter(None, (p.strip() for p in text.replace(";", ",").split(","))):
        key, sep, raw = item.partition("=")
        if not sep or not raw.strip().lstrip("-").isdigit():
            raise ValueError(f"synthetic spec {text!r}: expected key=integer items, got {item!r}")
        values[key.strip()] = int(raw)
    if "size" in values:
        size = values.pop("size")
        values.setdefault("height", size)
        values.setdefault("width", size)
    known = set(asdict(SyntheticSpec()))
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"synthetic spec: unknown key {unknown[0]!r} (known: size, {', '.join(sorted(known))})")
    return SyntheticSpec(**values)


def spec_to_text(spec: SyntheticSpec) -> str:
    return json.dumps(asdict(spec), sort_keys=True)


# --- drawing ---------------------------------------------------------------------------------------


def _texture(rng: np.random.Generator, h: int, w: int, saturation: float) -> np.ndarray:
    """Colourful texture (h, w, 3) uint8: smooth colour field + oriented stripes + fine grain."""
    coarse = rng.random((int(rng.integers(2, 6)), int(rng.integers(2, 6)), 3)).astype(np.float32)
    base = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
    grey = base.mean(axis=2, keepdims=True)
    base = grey + (base - grey) * (1.0 + 2.0 * saturation)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    angle, period = rng.uniform(0, np.pi), rng.uniform(5.0, 16.0)
    phase = (np.cos(angle) * xx + np.sin(angle) * yy) * (2 * np.pi / period)
    stripes = np.where(np.sin(phase) > 0, 1.0, -1.0)[..., None] if rng.random() < 0.5 else np.sin(phase)[..., None]
    tint = rng.uniform(-0.25, 0.25, size=3).astype(np.float32)
    grain = rng.normal(0.0, 0.04, size=(h, w, 1)).astype(np.float32)
    image = base + stripes * tint + grain
    return (np.clip(image, 0.0, 1.0) * 255).astype(np.uint8)


def _sprite(rng: np.random.Generator, side: int) -> tuple[np.ndarray, np.ndarray]:
    """(rgb, alpha) of one object on a side x side canvas: a random ellipse, polygon or ring."""
    for _ in range(10):  # thin slivers make poor objects: keep a shape that fills a fifth of its canvas
        alpha = _shape(rng, side)
        if (alpha > 0).mean() >= 0.2:
            break
    return _texture(rng, side, side, saturation=1.0), alpha


def _shape(rng: np.random.Generator, side: int) -> np.ndarray:
    alpha = np.zeros((side, side), np.uint8)
    c, r = side / 2, side * 0.45
    kind = int(rng.integers(3))
    if kind == 0:
        axes = (int(r * rng.uniform(0.6, 1.0)), int(r * rng.uniform(0.35, 1.0)))
        cv2.ellipse(alpha, (int(c), int(c)), axes, float(rng.uniform(0, 180)), 0, 360, 255, -1)
    else:
        n = int(rng.integers(5, 10))
        angles = np.sort(rng.uniform(0, 2 * np.pi, n))
        radii = r * rng.uniform(0.45, 1.0, n)
        poly = np.stack([c + radii * np.cos(angles), c + radii * np.sin(angles)], axis=1).astype(np.int32)
        cv2.fillPoly(alpha, [poly], 255)
        if kind == 2:  # punch a hole: the background shows through the object
            cv2.circle(alpha, (int(c), int(c)), int(r * rng.uniform(0.1, 0.25)), 0, -1)
    return alpha


def _background_path(rng: np.random.Generator, h: int, w: int, t: int) -> np.ndarray:
    """Affines texture -> frame for a slow pan (and slight zoom) across a 2h x 2w texture."""
    start = rng.uniform([0, 0], [w * 0.8, h * 0.8])
    end = rng.uniform([0, 0], [w * 0.8, h * 0.8])
    zoom = rng.uniform(0.95, 1.1, size=2)
    out = np.zeros((t, 2, 3))
    for f in range(t):
        a = f / max(1, t - 1)
        s = zoom[0] + (zoom[1] - zoom[0]) * a
        offset = start + (end - start) * a
        out[f] = [[s, 0, -s * offset[0]], [0, s, -s * offset[1]]]
    return out


def _object_path(rng: np.random.Generator, h: int, w: int, t: int, side: int) -> np.ndarray:
    """Affines sprite -> frame: a straight path with a wobble, growing/shrinking, turning."""
    start = rng.uniform([0.2 * w, 0.2 * h], [0.8 * w, 0.8 * h])
    end = rng.uniform([0.1 * w, 0.1 * h], [0.9 * w, 0.9 * h])
    wobble, freq, phase = rng.uniform(0, 0.05 * min(h, w), 2), rng.uniform(0.5, 2.0), rng.uniform(0, 2 * np.pi, 2)
    size0 = rng.uniform(0.28, 0.5) * min(h, w)
    growth = rng.uniform(0.7, 1.4)
    angle0, spin = rng.uniform(0, 2 * np.pi), rng.uniform(-1.5, 1.5)
    out = np.zeros((t, 2, 3))
    for f in range(t):
        a = f / max(1, t - 1)
        centre = start + (end - start) * a + wobble * np.sin(2 * np.pi * freq * a + phase)
        scale = size0 * (1 + (growth - 1) * a) / side
        theta = angle0 + spin * a
        rot = scale * np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
        out[f, :, :2] = rot
        out[f, :, 2] = centre - rot @ np.array([side / 2, side / 2])
    return out


def _render(
    texture: np.ndarray, sprites: list[tuple[np.ndarray, np.ndarray]], motion: SyntheticMotion, h: int, w: int, frame: int
) -> tuple[np.ndarray, np.ndarray]:
    """One frame (h, w, 3) and its id mask (h, w)."""
    image = cv2.warpAffine(texture, motion.background[frame], (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    ids = np.zeros((h, w), np.uint8)
    for oid in motion.depth_order:
        rgb, alpha = sprites[oid - 1]
        affine = motion.objects[oid][frame]
        cover = cv2.warpAffine(alpha, affine, (w, h), flags=cv2.INTER_NEAREST) > 0
        colour = cv2.warpAffine(rgb, affine, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        image[cover] = colour[cover]
        ids[cover] = oid
    return image, ids


def _full_area(motion: SyntheticMotion, sprites: list[tuple[np.ndarray, np.ndarray]], object_id: int, frame: int = 0) -> float:
    """Pixels object `object_id` would cover in `frame` if nothing hid it and the frame were unbounded."""
    alpha = sprites[object_id - 1][1]
    return float((alpha > 0).sum() * abs(np.linalg.det(motion.objects[object_id][frame][:, :2])))


def _invert(affine: np.ndarray) -> np.ndarray:
    return cv2.invertAffineTransform(np.asarray(affine, dtype=np.float64))


def _apply(affine: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ affine[:, :2].T + affine[:, 2]


def _lookup(mask: np.ndarray, points: np.ndarray, outside: int = 0) -> np.ndarray:
    """Mask value at the pixel containing each (x, y) point; `outside` for points off the frame."""
    xs, ys = np.rint(points[:, 0]).astype(np.int64), np.rint(points[:, 1]).astype(np.int64)
    inside = (xs >= 0) & (xs < mask.shape[1]) & (ys >= 0) & (ys < mask.shape[0])
    out = np.full(len(points), outside, dtype=np.int64)
    out[inside] = mask[ys[inside], xs[inside]]
    return out
