"""MLflow run names that say what ran: the pipeline by model, loss preset and seed; tune trials by their weights.

Stage runs are named by their stage (they sit under their pipeline's run); names are for people, so
nothing reads them back: tags (`corrvos.pipeline`, `corrvos.stage`, ...) stay the machine's handle.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from components.config import CorrvosConfig

# Short names of the usual tuned keys; any other key shows its last dotted part
SHORT_KEYS = {"loss.pcl_weight": "pcl", "loss.cross_view_weight": "cross_view", "loss.ocl_weight": "ocl",
              "train.learning_rate": "lr"}


def model_label(config: CorrvosConfig) -> str:
    """The base network, with its preset when the preset is not the base's own (e.g. `stcn-small`)."""
    name, preset = config.model.name, config.model.preset
    return name if preset in ("", name) else f"{name}-{preset}"


def pipeline_run_name(config: CorrvosConfig) -> str:
    """`<pipeline> <model> <loss preset> seed <train seed>`, e.g. `demo stcn-small released seed 14159265`."""
    return f"{config.pipeline.name} {model_label(config)} {config.loss.preset} seed {config.train.seed}"


def trial_run_name(trial_id: str, overrides: Mapping[str, Any]) -> str:
    """`trial <n>: pcl=0.21 ocl=0.053 lr=0.00032`: the trial's number in its search, then the values it tries."""
    number = trial_id.rsplit("_", 1)[-1].lstrip("0") or "0"
    values = " ".join(f"{SHORT_KEYS.get(key, key.rsplit('.', 1)[-1])}={_short(value)}"
                      for key, value in overrides.items())
    return f"trial {number}: {values}" if values else f"trial {number}"


def _short(value: Any) -> str:
    """A value in three significant digits when it is a float, as it is otherwise."""
    return f"{value:.3g}" if isinstance(value, float) else str(value)
