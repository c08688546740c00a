"""Pictures of an evaluation: a J&F bar chart, and per sequence an overlay strip, a GIF (and an MP4 for real footage).

Every function returns the paths it wrote, so a caller can log them (e.g. as MLflow artifacts).
Files are written to a temporary name and renamed, so a reader never sees half a picture. The
overlays themselves are drawn by `components.evaluation.overlays`, the renderer shared with
`predict --overlay` and training previews.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from components.evaluation.masks import resolve_annotation_root, resolve_image_root
from components.evaluation.overlays import (  # noqa: F401  (re-exported: reports are where callers look)
    CAPTION_HEIGHT,
    atomic_write,
    object_colour,
    write_overlay_gif,
    write_overlay_mp4,
    write_overlay_strip,
    write_sequence_overlays,
)
from components.evaluation.protocol import EvaluationResult

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
    return atomic_write(Path(path), lambda tmp: figure.savefig(tmp, format="png", dpi=100))


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
    return atomic_write(Path(path), lambda tmp: figure.savefig(tmp, format="png", dpi=100))


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
    mp4: bool | None = None,
) -> list[Path]:
    """All pictures of an evaluation; returns the paths written (bar chart first).

    `image_dir` holds <sequence>/<frame>.jpg; by default the JPEGImages folder beside the
    ground truth's Annotations, and a grey canvas where no image is found. `sequences` limits
    the per-sequence pictures (all by default). `mp4`: also an MP4 per sequence; by default for
    each sequence whose frames are on disk (real footage).
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
        video = mp4 if mp4 is not None else image_seq is not None and image_seq.is_dir()
        written += write_sequence_overlays(score, gt_seq, pred_seq, image_seq, out, mp4=video)
    return written
