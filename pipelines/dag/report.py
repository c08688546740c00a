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
        print()
        print(format_table(["test set", "sequence", "J&F", "J", "F"], _sequence_rows(evaluate.outputs)))
        print()
        print(format_table(["test set", "videos", "J&F", "copy-first-mask floor"], _test_set_rows(evaluate.outputs)))
        archives = json.loads(evaluate.outputs.get("submissions", "{}"))
        if archives:  # predict-only sets: what to upload to each benchmark's server
            print()
            print(format_table(["predict-only set", "benchmark", "videos", "files", "archive", "sha256"],
                               [[n, e["benchmark"], str(e["videos"]), str(e["files"]), e["archive"], e["sha256"][:16]]
                                for n, e in archives.items()]))
    print()
    print(f"model:    {summary['model_uri']}")
    if "promote" in result.outcomes:
        promoted = result.outcomes["promote"].outputs
        print(f"champion: {summary['champion_uri']}  (this model became {promoted.get('alias', '?')}: "
              f"{promoted.get('reason', '')})")
    else:
        print("champion: -")


def _test_sets(outputs: dict[str, str]) -> dict[str, dict]:
    """Test set name -> its entry; an evaluate record from before test sets were scored apart is one set."""
    if "test_sets" in outputs:
        return json.loads(outputs["test_sets"])
    return {"(held-out)": {"jf": float(outputs["jf"]), "floor_jf": None, "videos": None, "scores": outputs["scores"]}}


def _sequence_rows(outputs: dict[str, str]) -> list[list[str]]:
    """J&F, J and F per sequence of every test set, read from each set's scores.json."""
    rows = []
    for name, entry in _test_sets(outputs).items():
        sequences = json.loads(read_bytes(entry["scores"])).get("sequences", {})
        rows += [[name, seq, f"{s['J&F-Mean']:.3f}", f"{s['J-Mean']:.3f}", f"{s['F-Mean']:.3f}"]
                 for seq, s in _per_sequence(sequences)]
    return rows


def _test_set_rows(outputs: dict[str, str]) -> list[list[str]]:
    """Each test set's J&F beside the floor on the same videos; the primary one (registered) marked."""
    primary = outputs.get("primary_test_set")
    rows = []
    for name, entry in _test_sets(outputs).items():
        floor = entry.get("floor_jf")
        label = f"{name} (registered)" if name == primary else name
        rows.append([label, str(entry.get("videos") or "-"), f"{entry['jf']:.3f}",
                     "-" if floor is None else f"{floor:.3f}"])
    return rows


def _per_sequence(sequences) -> list[tuple[str, dict]]:
    if isinstance(sequences, dict):
        return sorted(sequences.items())
    return [(s["name"], s) for s in sequences]
