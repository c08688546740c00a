"""The stage graph and each stage's fingerprint: hash(stage, its config section, inputs' fingerprints, code).

Fingerprints depend only on the config, the code version, the sources' signatures, the rerun
generations and the precision `auto` resolves to on this machine, so `corrvos status` can say what
would be reused without running anything (or starting Ray).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any, Mapping

from components.config import CorrvosConfig, config_to_dict
from components.precision import resolved_precision

STAGE_ORDER = ("ingest", "pretrain", "tune", "train", "evaluate", "register", "promote")

# Dotted config sections each stage's result depends on (storage and run tracking are left out).
STAGE_SECTIONS: dict[str, tuple[str, ...]] = {
    "ingest": ("pipeline.sources",),
    "pretrain": ("model", "loss", "data", "pretrain"),
    "tune": ("model", "loss", "data", "train", "tune"),
    "train": ("model", "loss", "data", "train"),
    "evaluate": ("inference", "evaluate", "probe"),
    "register": ("tracking.mlflow_uri", "tracking.registered_model", "model.name"),
    "promote": ("tracking.mlflow_uri", "tracking.registered_model", "model.name", "tracking.promote_margin"),
}

# Keys that change where or how fast a stage runs, never what it computes, so a finished stage is
# reused across them. Not among them: a training stage's `num_workers` (each worker steps on
# batch_size // num_workers clips; the correspondence losses take their negatives, and batch-statistics
# BatchNorm its statistics, from that worker's batch) and `precision`, which enters as the name it
# resolves to (`with_resolved_precision`); `use_gpu` only matters through that name. `loader` (the
# data loader's threads and caches) yields the same batches whatever its settings.
EXECUTION_KEYS = frozenset({
    "use_gpu", "cpus_per_worker", "max_failures", "checkpoint_every", "keep_checkpoints",
    "log_every", "image_every", "fail_at_step", "max_concurrent", "cpus_per_trial", "loader",
    "validate_every", "validate_videos",
})


@dataclass(frozen=True)
class StageNode:
    """One stage of a planned pipeline run."""

    name: str
    inputs: tuple[str, ...]  # upstream stage names
    fingerprint: str


def active_stages(config: CorrvosConfig) -> tuple[str, ...]:
    """The stages this config runs, in order (`tune` only when `pipeline.tune`; no `pretrain` when
    `pipeline.init_from` names the checkpoint to start from)."""
    skipped = set() if config.pipeline.tune else {"tune"}
    if config.pipeline.init_from:
        skipped.add("pretrain")
    return tuple(s for s in STAGE_ORDER if s not in skipped)


def stage_inputs(name: str, stages: tuple[str, ...]) -> tuple[str, ...]:
    """Upstream stages whose outputs `name` reads."""
    wanted = {
        "ingest": (),
        "pretrain": ("ingest",),
        "tune": ("ingest", "pretrain"),
        "train": ("ingest", "pretrain", "tune"),
        "evaluate": ("ingest", "train"),
        "register": ("ingest", "train", "evaluate"),
        "promote": ("evaluate", "register"),
    }[name]
    return tuple(s for s in wanted if s in stages)


INIT_STAGES = ("tune", "train")  # the stages that start from pretrain's weights, or from `pipeline.init_from`


def plan(config: CorrvosConfig, code: str, generations: Mapping[str, int],
         source_signatures: Mapping[str, str], init_signature: str | None = None) -> list[StageNode]:
    """Nodes in run order with their fingerprints; `init_signature` identifies `pipeline.init_from`'s
    checkpoint (its content or registered version), so a different starting checkpoint trains anew."""
    stages = active_stages(config)
    plain = config_to_dict(with_resolved_precision(config))
    done: dict[str, str] = {}
    nodes = []
    for name in stages:
        inputs = stage_inputs(name, stages)
        payload = {
            "stage": name,
            "config": section_values(plain, STAGE_SECTIONS[name]),
            "inputs": {i: done[i] for i in inputs},
            "code": code,
            "generation": int(generations.get(name, 0)),
        }
        if name == "ingest":
            payload["sources"] = dict(sorted(source_signatures.items()))
        if name in INIT_STAGES and config.pipeline.init_from:
            payload["init"] = init_signature or config.pipeline.init_from
        done[name] = _digest(payload)
        nodes.append(StageNode(name, inputs, done[name]))
    return nodes


def evaluate_device_type() -> str:
    """The device the `evaluate` stage picks (`cuda` where torch sees a GPU), as seen from this machine."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def with_resolved_precision(config: CorrvosConfig, sections: tuple[str, ...] = ("pretrain", "train", "inference"),
                            ) -> CorrvosConfig:
    """`config` with `precision: auto` in `sections` replaced by `bf16` or `fp32` (`resolved_precision`).

    `pretrain` / `train` (and `tune`'s trials, which run `train`) resolve for their workers' device type:
    `use_gpu` means CUDA, where `auto` is bf16 on any machine; otherwise this machine's CPU decides.
    `inference` resolves for `evaluate_device_type()`. Fingerprints take all three. `run_pipeline` also
    hands the stages the resolved config, so Ray Train workers on other nodes run the precision their
    stage's fingerprint names whatever their own CPU would pick for `auto`, and `evaluate` records the
    inference precision it scored with (what the registry then serves).
    """
    changes = {}
    for section in sections:
        values = getattr(config, section)
        if values.precision == "auto":
            device = ("cuda" if values.use_gpu else "cpu") if section != "inference" else evaluate_device_type()
            changes[section] = dataclasses.replace(values, precision=resolved_precision("auto", device))
    return dataclasses.replace(config, **changes) if changes else config


def section_values(plain: Mapping[str, Any], sections: tuple[str, ...]) -> dict[str, Any]:
    """The named dotted sections of a plain config, without execution-only keys."""
    values = {}
    for dotted in sections:
        node: Any = plain
        for key in dotted.split("."):
            node = node[key]
        values[dotted] = _without_execution_keys(node)
    return values


def _without_execution_keys(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _without_execution_keys(v) for k, v in node.items() if k not in EXECUTION_KEYS}
    if isinstance(node, list):
        return [_without_execution_keys(v) for v in node]
    return node


def _digest(payload: dict[str, Any]) -> str:
    text = json.dumps(payload, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]
