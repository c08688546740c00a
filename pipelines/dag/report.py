"""What `corrvos run` prints at the end: stages, J&F per sequence, the registered and champion URIs."""

from __future__ import annotations

import json
from typing import Sequence

from components.storage import read_bytes


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def print_report(result) -> None:
    """Stage table, then J&F per sequence and the model URIs."""
    rows = [[name, o.state, o.folder, o.mlflow_run_id or "-"] for name, o in result.outcomes.items()]
    print(format_table(["stage", "state", "output", "mlflow run"], rows))
    summary = result.summary()
    evaluate = result.outcomes.get("evaluate")
    if evaluate is not None:
        scores = json.loads(read_bytes(evaluate.outputs["scores"]))
        sequences = scores.get("sequences", {})
        table = [[name, f"{s['J&F-Mean']:.3f}", f"{s['J-Mean']:.3f}", f"{s['F-Mean']:.3f}"]
                 for name, s in _per_sequence(sequences)]
        table.append(["(global)", f"{summary['jf']:.3f}", "", ""])
        print()
        print(format_table(["sequence", "J&F", "J", "F"], table))
    print()
    print(f"model:    {summary['model_uri']}")
    if "promote" in result.outcomes:
        promoted = result.outcomes["promote"].outputs
        print(f"champion: {summary['champion_uri']}  (this model became {promoted.get('alias', '?')}: "
              f"{promoted.get('reason', '')})")
    else:
        print("champion: -")


def _per_sequence(sequences) -> list[tuple[str, dict]]:
    if isinstance(sequences, dict):
        return sorted(sequences.items())
    return [(s["name"], s) for s in sequences]
