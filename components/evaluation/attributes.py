"""J&F per DAVIS attribute (occlusion, fast motion, appearance change, ...) from the dataset's db_info.yml.

DAVIS ships a `db_info.yml` whose `sequences` list gives each sequence's `attributes` (2016 and 2017
share the shape: `attributes: [AC, BC, ...]`, then `sequences: [{name, attributes, ...}]`). An
attribute's score is the set's global line restricted to the scored sequences that carry it (means
over their objects, as J&F-Mean averages over objects; with DAVIS 2016's one object per sequence that
is the mean of those sequences' scores, as its benchmark reports the attribute table); it shows where a change helps (e.g. the
correspondence losses under occlusion) rather than one number for the whole set.

    attrs = read_db_info("DAVIS/Annotations/db_info.yml")
    table = attribute_scores(run.result, attrs)      # {"OCC": AttributeScore(...), ...}
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

from components.errors import DataError
from components.evaluation.protocol import EvaluationResult
from components.storage import atomic_write_bytes, open_fs


@dataclass(frozen=True)
class AttributeScore:
    """Means over the objects of the scored sequences that carry one attribute."""

    attribute: str
    sequences: tuple[str, ...]
    j_mean: float
    f_mean: float
    jf_mean: float


def parse_db_info(text: str, where: str) -> dict[str, tuple[str, ...]]:
    """Sequence name -> its attributes, from db_info.yml text; `DataError` naming `where` on another shape."""
    try:
        document = yaml.safe_load(text)
        declared = set(document.get("attributes") or [])
        entries = document["sequences"]
        table = {str(e["name"]): tuple(str(a) for a in (e.get("attributes") or [])) for e in entries}
    except (yaml.YAMLError, AttributeError, KeyError, TypeError) as exc:
        raise DataError(f"{where}: not a DAVIS db_info.yml (needs sequences: [{{name, attributes}}]; {exc!r})") from None
    for name, attributes in table.items():
        unknown = sorted(set(attributes) - declared) if declared else []
        if unknown:
            raise DataError(f"{where}: sequence {name!r} has attribute {unknown[0]!r}, which the file's attributes list lacks")
    return table


def read_db_info(uri: str, storage_options: Mapping | None = None) -> dict[str, tuple[str, ...]]:
    """`parse_db_info` of a local path or fsspec URI."""
    try:
        fs, path = open_fs(str(uri), dict(storage_options or {}))
        with fs.open(path, "rb") as f:
            text = f.read().decode()
    except (FileNotFoundError, IsADirectoryError):
        raise DataError(f"{uri}: db_info.yml not found") from None
    return parse_db_info(text, str(uri))


def attribute_scores(result: EvaluationResult, attributes: Mapping[str, Sequence[str]]) -> dict[str, AttributeScore]:
    """Per attribute, J, F and J&F over the objects of the scored sequences carrying it (sorted by attribute).

    Every scored sequence must be in `attributes`: a partial table would silently average a subset.
    """
    missing = [s.name for s in result.sequences if s.name not in attributes]
    if missing:
        raise DataError(f"db_info.yml has no sequence {missing[0]!r} (scored here); is it this dataset's file?")
    grouped: dict[str, list] = {}
    for sequence in result.sequences:
        for attribute in attributes[sequence.name]:
            grouped.setdefault(attribute, []).append(sequence)
    table = {}
    for attribute in sorted(grouped):
        members = tuple(grouped[attribute])
        # the global line restricted to these sequences: means over their objects, as J&F-Mean is
        metrics = EvaluationResult(sequences=members, ignore_void=result.ignore_void).global_metrics()
        table[attribute] = AttributeScore(attribute, tuple(s.name for s in members), metrics["J-Mean"],
                                          metrics["F-Mean"], metrics["J&F-Mean"])
    return table


def write_attribute_scores(table: Mapping[str, AttributeScore], path: Path) -> Path:
    """The table as JSON (atomically): {attribute: {sequences, j_mean, f_mean, jf_mean}}."""
    document = {name: {k: v for k, v in asdict(score).items() if k != "attribute"} for name, score in table.items()}
    atomic_write_bytes(str(path), json.dumps(document, indent=1).encode())
    return Path(path)


def plot_attribute_scores(table: Mapping[str, AttributeScore], overall: float, path: Path) -> Path:
    """Bars of J&F per attribute (sequence count in each label), the set's J&F dashed."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    names = list(table)
    figure = Figure(figsize=(max(4.0, 0.6 * len(names) + 1.5), 3.2))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.bar(range(len(names)), [table[n].jf_mean for n in names], color="#4c72b0")
    axes.axhline(overall, color="black", linestyle="--", linewidth=1, label=f"all sequences {overall:.3f}")
    axes.set_xticks(range(len(names)), [f"{n}\n({len(table[n].sequences)})" for n in names], fontsize=7)
    axes.set_ylim(0, 1)
    axes.set_ylabel("J&F-Mean")
    axes.set_title("J&F per DAVIS attribute (sequences)")
    axes.legend(fontsize=7, loc="lower right")
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    atomic_write_bytes(str(path), buffer.getvalue())
    return path
