"""Tiny DAVIS-layout videos and a random `small` model checkpoint for evaluation and predict tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from components.config import ModelConfig, config_from_dict
from components.model import STCN
from components.model.checkpoint import save_inference_checkpoint

HEIGHT, WIDTH = 40, 56


def small_model(seed: int = 0) -> STCN:
    torch.manual_seed(seed)
    return STCN(config_from_dict(ModelConfig, {"preset": "small"})).eval()


def save_small_checkpoint(path: Path, seed: int = 0) -> Path:
    model = small_model(seed)
    save_inference_checkpoint(str(path), model.state_dict(), model.config, {"note": "random weights"})
    return path


def moving_squares(frames: int, objects: int = 1, seed: int = 0) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Noise frames with `objects` flat-coloured squares drifting right, and their id masks."""
    rng = np.random.default_rng(seed)
    images, masks = [], []
    for t in range(frames):
        image = rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
        ids = np.zeros((HEIGHT, WIDTH), np.uint8)
        for o in range(objects):
            y, x = 4 + 16 * o, 3 + 2 * t + 10 * o
            ids[y : y + 12, x : x + 12] = o + 1
            image[y : y + 12, x : x + 12] = (200 - 80 * o, 40 + 90 * o, 60)
        images.append(image)
        masks.append(ids)
    return images, masks


def write_mask(path: Path, ids: np.ndarray) -> Path:
    """An indexed PNG (palette index = object id)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(ids.astype(np.uint8), mode="P")
    image.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0, 128, 128, 0] + [255] * (3 * 252))
    image.save(path)
    return path


def write_frames(folder: Path, images: list[np.ndarray]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{t:05d}.jpg" for t in range(len(images))]
    for path, image in zip(paths, images):
        Image.fromarray(image).save(path, quality=95)
    return paths


def write_davis(root: Path, sequences: dict[str, int], objects: int = 1, resolution: str | None = "480p") -> Path:
    """A DAVIS folder (JPEGImages/<res>/<seq>, Annotations/<res>/<seq>), every frame annotated."""
    level = [resolution] if resolution else []
    for s, (name, count) in enumerate(sorted(sequences.items())):
        images, masks = moving_squares(count, objects, seed=s)
        write_frames(root.joinpath("JPEGImages", *level, name), images)
        for t, ids in enumerate(masks):
            write_mask(root.joinpath("Annotations", *level, name, f"{t:05d}.png"), ids)
    return root


def hidden_leftovers(folder: Path) -> list[str]:
    """Temporary files or folders (names starting with '.') anywhere under `folder`."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob(".*")) if folder.exists() else []
