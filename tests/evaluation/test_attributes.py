"""J&F per DAVIS attribute: the real db_info shape, means computed by hand, clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from components.errors import DataError
from components.evaluation.attributes import attribute_scores, parse_db_info, plot_attribute_scores, read_db_info
from components.evaluation.protocol import EvaluationResult, score_sequence

SHARED_DB_INFO = Path("/work/shared/data/davis2016_db_info.yml")

DB_INFO = """attributes: [OCC, FM, DEF]
sets: [training, test]
sequences:
- attributes: [OCC, FM]
  name: a
  num_frames: 3
  set: test
  eval_t: True
- attributes: [OCC]
  name: b
  num_frames: 3
  set: test
  eval_t: True
- attributes: []
  name: c
  num_frames: 3
  set: test
  eval_t: True
"""


def _sequence(name: str, shift: int, second_shift: int | None = None):
    """A 3-frame sequence whose prediction is the truth moved right by `shift` pixels; with `second_shift`
    a second object (moved by that much) joins the first."""
    truth = [np.zeros((20, 30), np.uint8) for _ in range(3)]
    for t, mask in enumerate(truth):
        mask[2:9, 3 + t : 10 + t] = 1
        if second_shift is not None:
            mask[11:19, 3 + t : 11 + t] = 2
    prediction = []
    for mask in truth:
        moved = np.where(mask == 1, 0, mask)
        moved[np.roll(mask == 1, shift, axis=1)] = 1
        if second_shift is not None:
            moved[mask == 2] = 0
            moved[np.roll(mask == 2, second_shift, axis=1)] = 2
        prediction.append(moved)
    return score_sequence(truth, prediction, name=name)


def test_attribute_means_by_hand() -> None:
    result = EvaluationResult(sequences=(_sequence("a", 0, second_shift=4), _sequence("b", 3), _sequence("c", 5)))
    a, b, _ = result.sequences
    table = attribute_scores(result, parse_db_info(DB_INFO, "db_info.yml"))
    assert sorted(table) == ["FM", "OCC"]  # DEF has no scored sequence; c has no attribute
    assert table["OCC"].sequences == ("a", "b")
    # means over the three objects of a and b, as the global J&F averages over objects (not sequences)
    objects = [*a.objects, *b.objects]
    j = sum(o.j_stats.mean for o in objects) / 3
    f = sum(o.f_stats.mean for o in objects) / 3
    assert table["OCC"].j_mean == pytest.approx(j) and table["OCC"].jf_mean == pytest.approx((j + f) / 2)
    assert table["OCC"].jf_mean != pytest.approx((a.jf_mean + b.jf_mean) / 2)
    assert table["FM"].jf_mean == pytest.approx(a.jf_mean) and a.objects[0].j_stats.mean == 1.0
    every = attribute_scores(result, {"a": ("X",), "b": ("X",), "c": ("X",)})
    assert every["X"].jf_mean == pytest.approx(result.global_metrics()["J&F-Mean"])


def test_bad_tables_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="x.yml: not a DAVIS db_info.yml"):
        parse_db_info("sequences: 3", "x.yml")
    with pytest.raises(DataError, match="sequence 'a' has attribute 'XX'"):
        parse_db_info(DB_INFO.replace("[OCC, FM]\n  name: a", "[XX]\n  name: a"), "x.yml")
    with pytest.raises(DataError, match="db_info.yml has no sequence 'zzz'"):
        attribute_scores(EvaluationResult(sequences=(_sequence("zzz", 0),)), parse_db_info(DB_INFO, "x.yml"))
    with pytest.raises(DataError, match="missing.yml: db_info.yml not found"):
        read_db_info(str(tmp_path / "missing.yml"))
    chart = plot_attribute_scores(attribute_scores(EvaluationResult(sequences=(_sequence("a", 1),)),
                                                   parse_db_info(DB_INFO, "x")), 0.5, tmp_path / "r" / "c.png")
    assert chart.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.skipif(not SHARED_DB_INFO.is_file(), reason="shared DAVIS 2016 db_info.yml not present")
def test_the_real_davis_2016_db_info_reads() -> None:
    table = read_db_info(str(SHARED_DB_INFO))
    assert len(table) == 50 and table["bear"] == ("DEF",) and table["blackswan"] == ()
