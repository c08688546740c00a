"""Loss curves as a picture: one panel per metric, x = training step."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def plot_curves(curves: Mapping[str, tuple[Sequence[int], Sequence[float]]], path: str | Path, title: str = "") -> Path:
    """Write a PNG with one small panel per named curve (steps, values); returns the path."""
    names = [n for n in curves if len(curves[n][0])]
    if not names:
        raise ValueError("no curve has any point")
    cols = min(3, len(names))
    rows = (len(names) + cols - 1) // cols
    figure, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 2.8 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names):
        steps, values = curves[name]
        ax.plot(steps, values, linewidth=1.2)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("step", fontsize=8)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
