"""`corrvos score GT_DIR PRED_DIR`: DAVIS semi-supervised J&F of predicted masks against ground truth."""

from __future__ import annotations

import argparse
from pathlib import Path

NAME = "score"
HELP = "score predicted masks (DAVIS layout) against ground truth with the DAVIS J&F protocol"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("gt_dir", metavar="GT_DIR", type=Path, help="ground truth: <seq>/<frame>.png or a DAVIS root")
    parser.add_argument("pred_dir", metavar="PRED_DIR", type=Path, help="predictions: <sequence>/<frame>.png")
    parser.add_argument("--json", metavar="FILE", type=Path, help="also write every figure to FILE as JSON")
    parser.add_argument("--sequences", metavar="LIST", help="only these: comma-separated names, or a file of names")
    parser.add_argument("--ignore-void", action="store_true", help="leave void (255) pixels out, unlike the toolkit")
    parser.add_argument("--workers", type=int, default=1, metavar="N", help="score N sequences at once (processes)")
    parser.add_argument("--report", action="store_true", help="draw a J&F bar chart and per-sequence overlays")
    parser.add_argument("--report-dir", metavar="DIR", type=Path, help="where reports go (implies --report; "
                        "default: <PRED_DIR>_report beside the predictions)")
    parser.add_argument("--images", metavar="DIR", type=Path, help="frames for overlays, <sequence>/<frame>.jpg "
                        "(default: the JPEGImages folder beside the ground truth's Annotations)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from components.evaluation import format_table, score_folders, write_json
    from components.evaluation.masks import read_sequence_list

    sequences = read_sequence_list(args.sequences) if args.sequences else None
    result = score_folders(
        args.gt_dir,
        args.pred_dir,
        sequences=sequences,
        ignore_void=args.ignore_void,
        workers=args.workers,
        progress=not args.no_progress,
    )
    print(format_table(result))
    if args.json is not None:
        print(f"wrote {write_json(result, args.json)}")
    if args.report or args.report_dir is not None:
        from components.evaluation.reports import write_reports

        paths = write_reports(result, args.gt_dir, args.pred_dir, out_dir=args.report_dir, image_dir=args.images)
        print(f"wrote {len(paths)} report files in {paths[0].parent}")
    return 0
