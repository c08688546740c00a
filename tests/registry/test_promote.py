"""`promote` moves `champion` only to a version whose J&F beats the champion's by more than the margin,
else marks it `challenger`; `promote_by_hand` moves it regardless."""

from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient

from components.errors import CorrvosError
from pipelines.registry import EVAL_SET_TAG, PROMOTION_TAG, promote, promote_by_hand, register_model


def _register(store, checkpoints, new_run, name, *scores: float) -> list[int]:
    uri, _ = store
    run_id = new_run()
    return [register_model(uri, name, str(checkpoints[i % 2]), run_id, jf, {}).version for i, jf in enumerate(scores)]


def _aliases(uri: str, name: str) -> dict[str, int]:
    return {k: int(v) for k, v in MlflowClient(uri, registry_uri=uri).get_registered_model(name).aliases.items()}


def test_champion_moves_only_when_jf_beats_it_by_more_than_the_margin(store, checkpoints, new_run, model_name) -> None:
    uri, _ = store
    v1, v2, v3, v4 = _register(store, checkpoints, new_run, model_name, 0.50, 0.52, 0.40, 0.60)
    first = promote(uri, model_name, v1, margin=0.05)
    assert (first.promoted, first.alias, first.champion_version) == (True, "champion", None)
    assert first.reason == "no champion yet"
    # +0.02 is not more than the 0.05 margin: challenger, champion stays
    close = promote(uri, model_name, v2, margin=0.05)
    assert (close.promoted, close.alias, close.jf, close.champion_version, close.champion_jf) == (
        False, "challenger", 0.52, v1, 0.50)
    assert _aliases(uri, model_name) == {"champion": v1, "challenger": v2}
    # a worse model never takes champion, even with no margin
    worse = promote(uri, model_name, v3, margin=0.0)
    assert (worse.promoted, worse.alias) == (False, "challenger")
    assert _aliases(uri, model_name) == {"champion": v1, "challenger": v3}
    # +0.10 beats the margin
    better = promote(uri, model_name, v4, margin=0.05)
    assert (better.promoted, better.alias, better.champion_version, better.champion_jf) == (True, "champion", v1, 0.50)
    assert "beats champion v1" in better.reason
    assert _aliases(uri, model_name) == {"champion": v4, "challenger": v3}
    tags = MlflowClient(uri, registry_uri=uri).get_model_version(model_name, str(v4)).tags
    assert tags[PROMOTION_TAG].startswith("champion: J&F 0.6000 beats")


def test_an_equal_score_does_not_take_champion_with_zero_margin(store, checkpoints, new_run, model_name) -> None:
    uri, _ = store
    v1, v2 = _register(store, checkpoints, new_run, model_name, 0.5, 0.5)
    promote(uri, model_name, v1, 0.0)
    assert promote(uri, model_name, v2, 0.0).alias == "challenger"
    again = promote(uri, model_name, v1, 0.0)  # promoting the champion again changes nothing
    assert (again.promoted, again.alias, again.reason) == (True, "champion", "already the champion")
    assert _aliases(uri, model_name) == {"champion": v1, "challenger": v2}


def test_promote_by_hand_takes_champion_whatever_the_score(store, checkpoints, new_run, model_name) -> None:
    uri, _ = store
    v1, v2 = _register(store, checkpoints, new_run, model_name, 0.9, 0.1)
    promote(uri, model_name, v1, 0.0)
    promote(uri, model_name, v2, 0.0)
    assert _aliases(uri, model_name) == {"champion": v1, "challenger": v2}
    decision = promote_by_hand(uri, model_name, v2)
    assert (decision.promoted, decision.alias, decision.reason) == (True, "champion", "by hand")
    assert (decision.jf, decision.champion_version, decision.champion_jf) == (0.1, v1, 0.9)
    assert _aliases(uri, model_name) == {"champion": v2}  # it is no longer also the challenger


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (lambda uri, name: promote(uri, name, 7, 0.0), "has no version 7"),
        (lambda uri, name: promote(uri, "no-such-model", 1, 0.0), "'no-such-model' has no version 1"),
        (lambda uri, name: promote(uri, name, 1, -0.1), "margin -0.1"),
        (lambda uri, name: promote_by_hand(uri, name, 3), "has no version 3"),
        (lambda uri, name: promote(uri.replace("mlflow.db", "other.db"), name, 1, 0.0), "no such MLflow database"),
    ],
)
def test_bad_requests_are_one_line_errors_and_change_nothing(store, checkpoints, new_run, model_name, call, expected):
    uri, _ = store
    _register(store, checkpoints, new_run, model_name, 0.5)
    with pytest.raises(CorrvosError) as info:
        call(uri, model_name)
    assert expected in str(info.value) and "\n" not in str(info.value)
    assert _aliases(uri, model_name) == {}


def test_jf_from_another_held_out_set_is_not_compared(store, checkpoints, new_run, model_name) -> None:
    uri, _ = store
    run_id = new_run()
    on_a = register_model(uri, model_name, str(checkpoints[0]), run_id, 0.60, {EVAL_SET_TAG: "aaaa" * 16}).version
    on_b = register_model(uri, model_name, str(checkpoints[1]), run_id, 0.90, {EVAL_SET_TAG: "bbbb" * 16}).version
    also_a = register_model(uri, model_name, str(checkpoints[1]), run_id, 0.70, {EVAL_SET_TAG: "aaaa" * 16}).version
    untagged = register_model(uri, model_name, str(checkpoints[0]), run_id, 0.99, {}).version
    assert promote(uri, model_name, on_a, 0.0).alias == "champion"
    # a higher J&F on another held-out set is no evidence: challenger, and the reason says why
    other = promote(uri, model_name, on_b, 0.0)
    assert (other.promoted, other.alias, other.champion_version) == (False, "challenger", on_a)
    assert "not comparable" in other.reason and "held-out set bbbbbbbbbbbb" in other.reason
    assert f"corrvos promote --version {on_b}" in other.reason
    assert promote(uri, model_name, untagged, 0.0).alias == "challenger"  # unrecorded set: not comparable either
    # the same set compares as always
    same = promote(uri, model_name, also_a, 0.0)
    assert (same.promoted, same.champion_version) == (True, on_a)
    assert _aliases(uri, model_name) == {"champion": also_a, "challenger": untagged}
