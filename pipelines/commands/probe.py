"""`corrvos probe`: how good is the model's matching itself? Key-only label propagation J&F, and point
correspondence accuracy on synthetic videos (docs/probe.md).

The probe settings are the ones stored with the model (a registered version carries those of the
evaluation it was scored in), else the defaults; `--set probe.KEY=VALUE` overrides single keys on top.
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the CLI imports every command at start-up: torch only when this one runs
    from components.probe import ProbeConfig, ProbeRun

NAME = "probe"
HELP = "correspondence probe: label propagation from key features alone (J&F), point accuracy on synthetic data"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from pipelines.commands.predict import add_model_arguments

    add_model_arguments(parser)
    parser.add_argument("--data", required=True, metavar="URI_OR_DIR",
                        help="an ingested dataset (URI, or a folder with manifest.json) or a DAVIS folder")
    parser.add_argument("--out", type=Path, default=Path("runs/probe"), metavar="DIR",
                        help="writes DIR/predictions/<seq>/<frame>.png and DIR/scores.json (default: runs/probe)")
    parser.add_argument("--sequences", metavar="LIST", help="only these: comma-separated names, or a file of names")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="probe.KEY=VALUE",
                        help="override one probe setting on top of those stored with the model, "
                             "e.g. probe.top_k=20 (repeatable)")
    parser.add_argument("--device", help="torch device (default: cuda when available, else cpu)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    import torch

    from components.evaluation import format_table
    from components.evaluation.masks import read_sequence_list
    from components.evaluation.videos import open_videos
    from components.probe import probe_videos
    from pipelines.commands.predict import load_resolved, settings_line

    probe_config(args.overrides)  # a bad --set fails before anything is read
    sequences = read_sequence_list(args.sequences) if args.sequences else None
    videos = open_videos(args.data, sequences)
    first = next(iter(videos))  # readers are lazy: read one video now, so bad data fails before the model loads
    videos = itertools.chain([first], videos)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model, resolved = load_resolved(args.model, args.tracking_uri, device)
    config = probe_config(args.overrides, resolved.settings.probe)
    print(settings_line("probe", config, resolved, resolved.settings.probe is not None, args.overrides))
    probe = probe_videos(model, videos, args.out, config, device, progress=not args.no_progress)
    print("probe J&F: label propagation from key features alone")
    print(format_table(probe.result))
    print(format_correspondence(probe))
    print(f"wrote {probe.predictions_dir} and {probe.scores_path}")
    return 0


def probe_config(overrides: list[str], base: ProbeConfig | None = None) -> ProbeConfig:
    """`base` (default: ProbeConfig()) with `probe.key=value` overrides (strict: unknown keys are errors)."""
    from components.probe import ProbeConfig
    from pipelines.commands.predict import section_config

    return section_config(ProbeConfig, "probe", "probe", overrides, base)


def format_correspondence(probe: ProbeRun) -> str:
    """corr_acc@r per frame gap, the mean over gaps and the grid's ceiling; one line when not measured."""
    metrics = probe.correspondence
    if metrics is None:
        return "point correspondence: not measured (needs an ingested synthetic dataset, which carries the motion)"
    radii = sorted({int(k.split("@")[1].split("/")[0]) for k in metrics if k.startswith("corr_acc@")})
    gaps = sorted({int(k.split("/gap")[1]) for k in metrics if "/gap" in k})
    header = "point correspondence  " + "  ".join(f"{'@' + str(r) + 'px':>7}" for r in radii)
    lines = [f"{header}   ({int(metrics['corr_points'])} visible query points)"]
    for gap in gaps:
        cells = "  ".join(_cell(metrics.get(f"corr_acc@{r}/gap{gap}")) for r in radii)
        lines.append(f"{'gap ' + str(gap):<20}  {cells}")
    lines.append(f"{'corr_acc (mean)':<20}  " + "  ".join(_cell(metrics.get(f"corr_acc@{r}")) for r in radii))
    lines.append(f"{'grid ceiling':<20}  " + "  ".join(_cell(metrics.get(f"corr_ceiling@{r}")) for r in radii))
    return "\n".join(lines)


def _cell(value: float | None) -> str:
    return f"{value:7.3f}" if value is not None else f"{'-':>7}"
