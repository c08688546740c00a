"""Render an experiment's runs table as MLflow's UI lists it (names, datasets, status, J&F) into a PNG.

For docs on machines with no browser: the picture is drawn from `MlflowClient.search_runs`, and says so
in its title, so it is never mistaken for a screenshot of the UI.

    python -m tools.mlflow_runs_table --tracking-uri sqlite:///runs/mlflow.db --out docs/images/mlflow-runs-table.png
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from mlflow.entities import Run
from mlflow.tracking import MlflowClient

COLUMNS = ("Run Name", "Created", "Dataset", "Duration", "Status", "jf")
PARENT_TAG = "mlflow.parentRunId"


def run_rows(client: MlflowClient, experiment: str) -> list[tuple[str, ...]]:
    """One row per run, children indented under their parent, newest pipeline first (as the UI nests them)."""
    found = client.get_experiment_by_name(experiment)
    if found is None:
        raise SystemExit(f"no experiment {experiment!r}")
    runs = client.search_runs([found.experiment_id], max_results=1000, order_by=["attributes.start_time DESC"])
    children: dict[str, list[Run]] = {}
    for run in runs:
        children.setdefault(run.data.tags.get(PARENT_TAG, ""), []).append(run)
    rows: list[tuple[str, ...]] = []

    def add(run: Run, depth: int) -> None:
        rows.append(_row(run, depth))
        for child in sorted(children.get(run.info.run_id, []), key=lambda r: r.info.start_time):
            add(child, depth + 1)

    for top in children.get("", []):
        add(top, 0)
    return rows


def _row(run: Run, depth: int) -> tuple[str, ...]:
    """The cells of one run."""
    datasets = ", ".join(f"{i.dataset.name} ({i.dataset.digest[:8]}) {_context(i)}" for i in run.inputs.dataset_inputs)
    end = run.info.end_time or run.info.start_time
    jf = run.data.metrics.get("jf")
    return ("    " * depth + ("└ " if depth else "") + (run.info.run_name or run.info.run_id),
            time.strftime("%Y-%m-%d %H:%M", time.gmtime(run.info.start_time / 1000)), datasets or "-",
            f"{(end - run.info.start_time) / 60000:.1f} min", run.info.status, f"{jf:.3f}" if jf is not None else "")


def _context(dataset_input) -> str:
    return next((t.value for t in dataset_input.tags if t.key == "mlflow.data.context"), "")


def render(rows: list[tuple[str, ...]], title: str, path: Path) -> Path:
    """The rows as a table image at `path` (PNG)."""
    figure = Figure(figsize=(18, 0.24 * (len(rows) + 1) + 0.35), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.axis("off")
    axes.set_title(title, fontsize=9, loc="left")
    table = axes.table(cellText=rows, colLabels=COLUMNS, cellLoc="left", colLoc="left", bbox=[0, 0, 1, 1],
                       colWidths=[0.17, 0.08, 0.6, 0.05, 0.06, 0.04])
    table.auto_set_font_size(False)
    table.set_fontsize(7.5)
    for (row, _), cell in table.get_celld().items():
        cell.set_edgecolor("#dddddd")
        cell.PAD = 0.01  # of the cell's width: matplotlib's 0.1 pushes the wide Dataset text far from its edge
        if row == 0:
            cell.set_facecolor("#f2f2f2")
            cell.set_text_props(weight="bold")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png", dpi=90)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracking-uri", default="sqlite:///runs/mlflow.db")
    parser.add_argument("--experiment", default="corrvos")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    client = MlflowClient(args.tracking_uri)
    title = (f"MLflow experiment '{args.experiment}': runs table RENDERED from MlflowClient.search_runs "
             "(not a screenshot of the MLflow UI; no browser on the machine that made it)")
    print(render(run_rows(client, args.experiment), title, args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
