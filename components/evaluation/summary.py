"""An evaluation as the toolkit's vocabulary: a JSON document and a printed table."""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

from components.evaluation.protocol import EvaluationResult, ObjectScore, SequenceScore


def object_dict(obj: ObjectScore) -> dict[str, Any]:
    """Every figure of one object, per-frame values included."""
    return {
        "id": obj.object_id,
        "J&F-Mean": _number(obj.jf_mean),
        "J-Mean": _number(obj.j_stats.mean),
        "J-Recall": _number(obj.j_stats.recall),
        "J-Decay": _number(obj.j_stats.decay),
        "F-Mean": _number(obj.f_stats.mean),
        "F-Recall": _number(obj.f_stats.recall),
        "F-Decay": _number(obj.f_stats.decay),
        "J-per-frame": [_number(v) for v in obj.j.tolist()],
        "F-per-frame": [_number(v) for v in obj.f.tolist()],
    }


def sequence_dict(seq: SequenceScore) -> dict[str, Any]:
    """A sequence's means over its objects, the evaluated frame names and each object's figures."""
    return {
        "J-Mean": _number(seq.j_mean),
        "F-Mean": _number(seq.f_mean),
        "J&F-Mean": _number(seq.jf_mean),
        "frames": list(seq.frames),
        "objects": [object_dict(o) for o in seq.objects],
    }


def result_dict(result: EvaluationResult) -> dict[str, Any]:
    """{"global": {...}, "sequences": {name: {...}}, "options": {...}}, ready for json.dump."""
    return {
        "global": {key: _number(value) for key, value in result.global_metrics().items()},
        "sequences": {seq.name: sequence_dict(seq) for seq in result.sequences},
        "options": {"ignore_void": result.ignore_void},
    }


def write_json(result: EvaluationResult, path: Path) -> Path:
    """Write `result_dict(result)` to `path` atomically (a temporary file in the same folder, renamed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result_dict(result), indent=2, allow_nan=False)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w") as out:
            out.write(text + "\n")
        os.chmod(temporary, 0o644)  # mkstemp creates 0600
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def format_table(result: EvaluationResult) -> str:
    """Per-sequence table (objects, J-Mean, F-Mean, J&F-Mean) followed by the global line."""
    width = max([len("sequence")] + [len(s.name) for s in result.sequences])
    lines = [f"{'sequence':<{width}}  objects  J-Mean  F-Mean  J&F-Mean"]
    for seq in result.sequences:
        lines.append(
            f"{seq.name:<{width}}  {len(seq.objects):>7}  {seq.j_mean:6.3f}  {seq.f_mean:6.3f}  {seq.jf_mean:8.3f}"
        )
    g = result.global_metrics()
    lines.append(
        f"global ({len(result.sequences)} sequences, {len(result.objects)} objects): "
        f"J&F-Mean {g['J&F-Mean']:.3f} | J-Mean {g['J-Mean']:.3f} J-Recall {g['J-Recall']:.3f} "
        f"J-Decay {g['J-Decay']:.3f} | F-Mean {g['F-Mean']:.3f} F-Recall {g['F-Recall']:.3f} "
        f"F-Decay {g['F-Decay']:.3f}"
    )
    return "\n".join(lines)


def _number(value: float) -> float | None:
    """JSON has no NaN: undefined figures become null."""
    return None if math.isnan(value) else float(value)
