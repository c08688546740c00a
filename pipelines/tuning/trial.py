"""One Tune trial: the `train` stage on Ray Train with the trial's overrides, in its own MLflow child run.

The trial function itself holds no CPU (Tune refuses an all-zero request, so it asks for one MiB of
memory); its single Train worker holds `tune.cpus_per_trial` CPUs. `TuneReportCallback` passes the
workers' reports (with `val_jf`) from Ray Train to Tune.

When ASHA stops a trial, Tune kills the trial actor and with it the Train controller it owns, but not
the controller's placement group: Ray scopes a placement group to the job, and Train's own cleaner
needs the state API (a dashboard, one Ray per machine). So the controller records its placement
groups in a ledger actor, and the driver releases a trial's groups when the trial ends. A controller
killed before it could record its group leaves one the ledger never heard of: when the search ends,
the driver also removes every group its own job created during the search (`job_placement_groups`).

Tune's `fit` can return while a stopped trial's actor is still winding down: its Train controller may
start another worker group (another placement group) and the dying trial may mark its MLflow run
FAILED after the search closed it. So every trial and every controller records its actor in the ledger
before it does anything else, and the driver kills and waits out all of them (`end_trial_actors`)
before it sweeps the groups and closes the runs.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import ray
from mlflow.tracking import MlflowClient
from ray import tune
from ray.train.v2._internal.execution.callback import WorkerGroupCallback
from ray.tune.integration.ray_train import TuneReportCallback
from ray._raylet import PlacementGroupID
from ray.util.placement_group import PlacementGroup, placement_group_table, remove_placement_group

from components.config import CorrvosConfig, config_from_dict
from components.storage import atomic_write_bytes, read_bytes
from pipelines.dataset_inputs import log_dataset_inputs
from pipelines.run_names import trial_run_name
from pipelines.tracking import RunLogger
from pipelines.training.stage import run_training_stage
from pipelines.training.worker import PeriodicValidation
from pipelines.tuning.space import config_with_overrides, plain

TRIAL_RESOURCES = {"CPU": 0, "memory": 1 << 20}
RUN_ID_FILE = "mlflow_run_id"
RECORD_TIMEOUT_S = 30.0

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrialSetup:
    """What every trial shares; URIs are absolute (Tune runs trials in their own directories)."""

    config: dict[str, Any]  # the resolved config with the trial stage settings, before overrides
    train_datasets: tuple[str, ...]
    val_datasets: tuple[str, ...]
    output_uri: str
    init_weights: str | None
    tracking_uri: str
    parent_run_id: str
    ledger_name: str


def trial_uri(output_uri: str, trial_id: str) -> str:
    return f"{output_uri}/trials/{trial_id}"


def run_trial(params: dict[str, Any], setup: TrialSetup) -> None:
    """Tune's function trainable: train with `params` (dotted key -> value) applied to the shared config."""
    trial_id = tune.get_context().get_trial_id()
    _record_this_actor(setup.ledger_name, trial_id)  # so the driver can end it when the search ends
    overrides = {key: plain(value) for key, value in params.items()}
    config = config_with_overrides(config_from_dict(CorrvosConfig, setup.config), overrides)
    output = trial_uri(setup.output_uri, trial_id)
    run_id = _trial_run(setup, trial_id, overrides, output, config.storage.options)
    validation = PeriodicValidation(setup.val_datasets, config.tune.eval_every, config.tune.val_videos)
    callbacks = [TuneReportCallback(), PlacementGroupRecorder(setup.ledger_name, trial_id)]
    client = MlflowClient(setup.tracking_uri)
    try:
        run_training_stage(config, "train", list(setup.train_datasets), output, setup.init_weights,
                           setup.tracking_uri, run_id, validation=validation, callbacks=callbacks)
    except BaseException:
        client.set_terminated(run_id, status="FAILED")
        raise
    client.set_terminated(run_id, status="FINISHED")


def _trial_run(setup: TrialSetup, trial_id: str, overrides: dict[str, Any], output: str, options: dict) -> str:
    """The trial's MLflow child run: reused when the trial restarts (its id is kept beside its checkpoints)."""
    marker = f"{output}/{RUN_ID_FILE}"
    try:
        return read_bytes(marker, options).decode().strip()
    except FileNotFoundError:
        pass
    client = MlflowClient(setup.tracking_uri)
    experiment = client.get_run(setup.parent_run_id).info.experiment_id
    run = client.create_run(experiment, run_name=trial_run_name(trial_id, overrides), tags={
        "mlflow.parentRunId": setup.parent_run_id, "corrvos.stage": "tune-trial", "corrvos.tune.trial_id": trial_id,
    })
    RunLogger(setup.tracking_uri, run.info.run_id).log_params({key: str(value) for key, value in overrides.items()})
    log_dataset_inputs(setup.tracking_uri, run.info.run_id,
                       [(uri, "train") for uri in setup.train_datasets] + [(uri, "val") for uri in setup.val_datasets],
                       options)
    atomic_write_bytes(marker, run.info.run_id.encode(), options)
    return run.info.run_id


def trial_run_id(output_uri: str, trial_id: str, options: dict | None = None) -> str | None:
    """The MLflow run id a trial recorded, or None when it never started."""
    try:
        return read_bytes(f"{trial_uri(output_uri, trial_id)}/{RUN_ID_FILE}", options).decode().strip()
    except FileNotFoundError:
        return None


@ray.remote(num_cpus=0)
class PlacementGroupLedger:
    """Placement groups of each trial's Train runs; releasing a trial removes them (and any it records later)."""

    def __init__(self) -> None:
        self.groups: dict[str, list[PlacementGroup]] = {}
        self.released: set[str] = set()
        self.actors: list[Any] = []  # every trial actor and Train controller of the search, in start order

    def record_actor(self, handle: Any) -> None:
        if handle not in self.actors:  # a controller records itself again at each worker-group restart
            self.actors.append(handle)

    def recorded_actors(self) -> list[Any]:
        return list(self.actors)

    def record(self, trial_id: str, group: PlacementGroup) -> None:
        self.groups.setdefault(trial_id, []).append(group)
        if trial_id in self.released:  # a controller that restarted its workers after the trial ended
            self.release(trial_id)

    def release(self, trial_id: str) -> int:
        self.released.add(trial_id)
        removed = 0
        for group in self.groups.pop(trial_id, []):
            if placement_group_table(group).get("state") not in (None, "REMOVED"):
                remove_placement_group(group)
                removed += 1
        return removed


def ledger(name: str):
    """The run's ledger, by name (a restored Tune run finds it again from its pickled callbacks).

    A named actor still dies with its last handle: the caller keeps this one while the search runs.
    """
    return PlacementGroupLedger.options(name=name, get_if_exists=True).remote()


class PlacementGroupRecorder(WorkerGroupCallback):
    """Ray Train controller callback: tell the ledger which placement group this trial's workers hold."""

    def __init__(self, ledger_name: str, trial_id: str) -> None:
        self.ledger_name = ledger_name
        self.trial_id = trial_id

    def before_worker_group_start(self, worker_group_context) -> None:
        """Before this controller makes a placement group: put the controller itself on record."""
        _record_this_actor(self.ledger_name, self.trial_id)

    def after_worker_group_start(self, worker_group) -> None:
        try:  # never fail training over bookkeeping
            group = worker_group._worker_group_state.placement_group_handle.placement_group
            # waited for, so the group is on record before training starts (a message still in flight when
            # the controller is killed would be lost)
            ray.get(ray.get_actor(self.ledger_name).record.remote(self.trial_id, group), timeout=RECORD_TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001
            log.warning("trial %s: placement group not recorded (%s); it may outlive the trial if stopped",
                        self.trial_id, exc)


class ReleasePlacementGroups(tune.Callback):
    """Driver side: when a trial ends (done, stopped by ASHA, or failed), remove what its Train runs still hold."""

    def __init__(self, ledger_name: str) -> None:
        self.ledger_name = ledger_name

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        self._release(trial.trial_id)

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        self._release(trial.trial_id)

    def _release(self, trial_id: str) -> None:
        ray.get(ledger(self.ledger_name).release.remote(trial_id))


def job_placement_groups() -> set[str]:
    """Ids of the live placement groups this driver's job created (its trials' Train controllers included).

    A placement group id ends with the id of the job that created it; the search's controllers and
    workers run in the driver's job, so this finds their groups and no other job's.
    """
    if not ray.is_initialized():  # no job yet, so no group of ours (Tune starts Ray itself)
        return set()
    job = ray.get_runtime_context().get_job_id()
    return {group_id for group_id, row in placement_group_table().items()
            if group_id.endswith(job) and row.get("state") != "REMOVED"}


def remove_placement_groups_since(before: set[str]) -> int:
    """Remove the job's live groups that are not in `before` (the ones made during the search); returns how many."""
    removed = 0
    for group_id in sorted(job_placement_groups() - before):
        remove_placement_group(PlacementGroup(PlacementGroupID.from_hex(group_id)))
        removed += 1
    if removed:
        log.warning("removed %d placement group(s) left by stopped tune trials", removed)
    return removed


def _record_this_actor(ledger_name: str, trial_id: str) -> None:
    """Tell the ledger which actor this is (a trial or its Train controller); waited for, never fatal."""
    try:
        handle = ray.get_runtime_context().current_actor
        ray.get(ray.get_actor(ledger_name).record_actor.remote(handle), timeout=RECORD_TIMEOUT_S)
    except Exception as exc:  # noqa: BLE001
        log.warning("trial %s: actor not recorded (%s); it may outlive the search", trial_id, exc)


def end_trial_actors(ledger_actor, timeout_s: float = 60.0) -> int:
    """Kill every trial actor and Train controller the ledger recorded and wait until each is gone; returns
    how many were on record. After this nothing of the search can make a placement group or log a run."""
    handles = ray.get(ledger_actor.recorded_actors.remote(), timeout=RECORD_TIMEOUT_S)
    for handle in handles:
        try:
            ray.kill(handle, no_restart=True)
        except Exception:  # noqa: BLE001  (already gone)
            continue
    deadline = time.monotonic() + timeout_s
    for handle in handles:
        while time.monotonic() < deadline:
            try:
                ray.get(handle.__ray_ready__.remote(), timeout=1.0)
            except ray.exceptions.GetTimeoutError:
                continue  # still shutting down
            except ray.exceptions.RayActorError:
                break  # gone
            time.sleep(0.1)  # answered: the kill has not landed yet
    return len(handles)
