"""Promotion: alias `champion` moves to a version only when its J&F beats the champion's, on the same held-out set.

A version that does not beat it, or whose J&F was measured on another held-out set (tag
`corrvos.eval_dataset_version`), gets `challenger` instead; a person can promote any version by hand.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from mlflow.tracking import MlflowClient

from components.errors import CorrvosError
from pipelines.registry.client import get_version, mlflow_call, registry_client
from pipelines.registry.names import (
    CHALLENGER,
    CHAMPION,
    EVAL_SET_TAG,
    JF_TAG,
    PROMOTION_TAG,
)


@dataclass(frozen=True)
class PromotionDecision:
    """What `promote` did: which alias the version now carries, and why."""

    promoted: bool
    alias: str  # "champion" or "challenger"
    version: int
    jf: float | None
    champion_version: int | None  # the champion before the decision
    champion_jf: float | None
    reason: str


def promote(tracking_uri: str, name: str, version: int, margin: float) -> PromotionDecision:
    """Alias `champion` -> `version` when its J&F beats the champion's by more than `margin`, else `challenger`."""
    if not math.isfinite(margin) or margin < 0:
        raise CorrvosError(f"promote margin {margin!r}: expected a number >= 0")
    client = registry_client(tracking_uri)
    candidate = get_version(client, name, version)
    jf = _version_jf(candidate, name, required=True)
    champion = _champion(client, name)
    if champion is None:
        return _decide(client, name, version, jf, None, None, True, "no champion yet")
    champion_version, champion_jf = int(champion.version), _version_jf(champion, name, required=True)
    if champion_version == int(version):
        return _decide(client, name, version, jf, champion_version, champion_jf, True, "already the champion")
    mismatch = _eval_set_mismatch(candidate, champion)
    if mismatch:
        reason = (f"J&F {jf:.4f} is not comparable with champion v{champion_version} ({champion_jf:.4f}): {mismatch}; "
                  f"`corrvos promote --version {int(version)}` promotes it by hand")
        return _decide(client, name, version, jf, champion_version, champion_jf, False, reason)
    gain = jf - champion_jf
    if gain > margin:
        reason = (f"J&F {jf:.4f} beats champion v{champion_version} ({champion_jf:.4f}) "
                  f"by {gain:.4f} > margin {margin:g}")
        return _decide(client, name, version, jf, champion_version, champion_jf, True, reason)
    reason = f"J&F {jf:.4f} does not beat champion v{champion_version} ({champion_jf:.4f}) by more than {margin:g}"
    return _decide(client, name, version, jf, champion_version, champion_jf, False, reason)


def promote_by_hand(tracking_uri: str, name: str, version: int) -> PromotionDecision:
    """Alias `champion` -> `version` whatever its J&F (a person decided)."""
    client = registry_client(tracking_uri)
    jf = _version_jf(get_version(client, name, version), name, required=False)
    champion = _champion(client, name)
    champion_version = int(champion.version) if champion is not None else None
    champion_jf = _version_jf(champion, name, required=False) if champion is not None else None
    return _decide(client, name, version, jf, champion_version, champion_jf, True, "by hand")


def _champion(client: MlflowClient, name: str) -> Any | None:
    """The version that carries `champion`, or None."""
    model = mlflow_call(lambda: client.get_registered_model(name), f"registered model {name!r}")
    if CHAMPION not in (model.aliases or {}):
        return None
    return get_version(client, name, int(model.aliases[CHAMPION]))


def _eval_set_mismatch(version: Any, champion: Any) -> str:
    """Why the two J&F tags were measured on different held-out sets ("" when comparable).

    Versions registered without the tag (before it existed, or by hand) compare with each other as before.
    """
    ours, theirs = (version.tags or {}).get(EVAL_SET_TAG), (champion.tags or {}).get(EVAL_SET_TAG)
    if ours == theirs:
        return ""
    return f"it was scored on {_held_out_name(ours)}, the champion on {_held_out_name(theirs)}"


def _held_out_name(tag: str | None) -> str:
    """A held-out set as a reason names it: the start of its version, or that none was recorded."""
    return "an unrecorded held-out set" if tag is None else f"held-out set {tag[:12]}"


def _version_jf(version: Any, name: str, required: bool) -> float | None:
    """The J&F tag of a model version (None when absent and not `required`)."""
    value = (version.tags or {}).get(JF_TAG)
    try:
        jf = float(value) if value is not None else None
    except ValueError:
        jf = None
    if jf is None and required:
        raise CorrvosError(f"registered model {name!r} version {version.version} has no numeric {JF_TAG} tag")
    return jf


def _decide(client: MlflowClient, name: str, version: int, jf: float | None, champion_version: int | None,
            champion_jf: float | None, promoted: bool, reason: str) -> PromotionDecision:
    """Set the alias the decision gives `version` (and drop its `challenger` when it becomes champion)."""
    alias, where = (CHAMPION if promoted else CHALLENGER), f"registered model {name!r}"
    if promoted:
        model = mlflow_call(lambda: client.get_registered_model(name), where)
        if str((model.aliases or {}).get(CHALLENGER)) == str(version):
            mlflow_call(lambda: client.delete_registered_model_alias(name, CHALLENGER), where)
    mlflow_call(lambda: client.set_registered_model_alias(name, alias, str(version)), where)
    mlflow_call(lambda: client.set_model_version_tag(name, str(version), PROMOTION_TAG, f"{alias}: {reason}"), where)
    return PromotionDecision(promoted, alias, int(version), jf, champion_version, champion_jf, reason)
