"""Drive one training stage on Ray Train and turn its last checkpoint into inference weights.

`run_training_stage` is a plain function from input URIs to output URIs (DESIGN.md): it knows
nothing of the DAG or caching. Ray Train keeps its checkpoints under `<output>/ray/`; running the
stage again with the same output resumes from the newest one (Ray Train v2 restores a run of the
same name and storage path). The inference weights (no head g) are written last, to `<output>/model.pt`.

Ray Train restarts the worker group after a worker error (`max_failures`); a `CorrvosError` (bad data,
bad config, unreadable weights) would fail the same way on every restart, so it ends the stage at once
(`StopOnCorrvosError`), and the stage's error names the worker's own message.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path
from typing import Any, Sequence

import pyarrow.fs
import ray.train
from ray.train import CheckpointConfig, ControllerError, FailureConfig, RunConfig, ScalingConfig, WorkerGroupError
from ray.train.torch import TorchTrainer

from components.config import CorrvosConfig, config_to_dict
from components.data.dataset import VideoDataset
from components.errors import CorrvosError
from components.model.checkpoint import save_inference_checkpoint
from components.model.train_wrapper import HEAD_PREFIX
from components.training.state import TrainingState
from pipelines.training.callbacks import StopOnCorrvosError, cannot_succeed_on_retry
from pipelines.training.worker import STATE_FILE, PeriodicValidation, train_worker
from pipelines.versioning import code_version
from components.storage import absolute_uri, open_fs

STAGES = ("pretrain", "train")


class TrainingFailed(CorrvosError):
    """Ray Train gave up on the stage (after its allowed worker restarts, or at once on a CorrvosError).

    `retryable` is set (an instance attribute, so it survives pickling) when no cause was a CorrvosError:
    workers or nodes lost, OOM kills, errors outside corrvos; running the stage again may then succeed.
    """

    retryable = False


def run_training_stage(
    config: CorrvosConfig,
    stage_name: str,
    datasets: list[str],
    output_uri: str,
    init_weights: str | None = None,
    tracking_uri: str | None = None,
    run_id: str | None = None,
    validation: PeriodicValidation | None = None,
    callbacks: Sequence[Any] = (),
) -> dict[str, str]:
    """Train `stage_name` on `datasets`; returns {"model": inference weights URI, "checkpoints": Ray run URI}.

    `validation` adds `val_jf` to the reports (rank 0 scores a few validation videos); `callbacks` go to
    Ray Train's RunConfig (Ray Tune's `TuneReportCallback` when a trial runs the stage).
    """
    if stage_name not in STAGES:
        raise ValueError(f"unknown training stage {stage_name!r}")
    stage = getattr(config, stage_name)
    output_uri = absolute_uri(output_uri)
    version = dataset_version(datasets, config.storage.options)  # reads every manifest: a bad dataset fails here
    check_inputs(init_weights, validation, config.storage.options)
    public = config_to_dict(config)
    public["storage"]["options"] = {}
    payload: dict[str, Any] = {
        "config": config_to_dict(config),
        "config_public": public,
        "stage": stage_name,
        "datasets": list(datasets),
        "init_weights": init_weights,
        "tracking_uri": tracking_uri,
        "run_id": run_id,
        "dataset_version": version,
        "fault_marker": f"{output_uri}/fault-injected" if stage.fail_at_step is not None else None,
        "validation": validation.to_payload() if validation else None,
    }
    storage_path, storage_fs = ray_storage(f"{output_uri}/ray", config.storage.options)
    resources = {"CPU": stage.cpus_per_worker, **({"GPU": 1} if stage.use_gpu else {})}
    trainer = TorchTrainer(
        train_worker,
        train_loop_config=payload,
        scaling_config=ScalingConfig(num_workers=stage.num_workers, use_gpu=stage.use_gpu, resources_per_worker=resources),
        run_config=RunConfig(
            name=stage_name,
            storage_path=storage_path,
            storage_filesystem=storage_fs,
            failure_config=FailureConfig(max_failures=stage.max_failures),
            checkpoint_config=CheckpointConfig(num_to_keep=stage.keep_checkpoints),
            callbacks=[*callbacks, StopOnCorrvosError()],  # last: the others still see the error
        ),
    )
    try:
        result = trainer.fit()
    except ray.train.TrainingFailedError as exc:
        raise stage_failure(stage_name, exc) from None
    if result.checkpoint is None:
        raise TrainingFailed(f"stage {stage_name} finished without a checkpoint")
    state = read_training_state(result.checkpoint)
    if state.step != stage.iterations:
        raise TrainingFailed(f"stage {stage_name} stopped at step {state.step} of {stage.iterations}")
    model_uri = f"{output_uri}/model.pt"
    model_config = config.model if stage_name != "pretrain" else dataclasses.replace(config.model, single_object=True)
    inference_state = {k: v for k, v in state.model.items() if not k.startswith(HEAD_PREFIX)}
    metadata = {"stage": stage_name, "step": state.step, "dataset_version": version, "code_version": code_version()}
    save_inference_checkpoint(model_uri, inference_state, model_config, metadata)
    return {"model": model_uri, "checkpoints": f"{output_uri}/ray/{stage_name}"}


def check_inputs(init_weights: str | None, validation: PeriodicValidation | None, options: dict[str, Any]) -> None:
    """Refuse, on the driver and before any worker starts, init weights that are not there and unreadable validation sets."""
    if init_weights:
        try:
            fs, path = open_fs(init_weights, options)
            found = fs.isfile(path)
        except (ValueError, ImportError, OSError) as exc:  # an unknown protocol, a missing fsspec backend, I/O
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise CorrvosError(f"init weights {init_weights}: cannot open ({reason})") from None
        if not found:
            raise CorrvosError(f"init weights {init_weights}: not found")
    for uri in validation.datasets if validation else ():
        VideoDataset(uri, options)  # reads the manifest


def stage_failure(stage_name: str, exc: BaseException) -> TrainingFailed:
    """The stage's error for a Ray Train failure: one line saying why, `retryable` unless a cause cannot succeed."""
    failure = TrainingFailed(f"stage {stage_name} failed: {failure_reason(exc)}")
    failure.retryable = not any(cannot_succeed_on_retry(cause) for cause in _causes(exc))
    return failure


def failure_reason(exc: BaseException) -> str:
    """One line saying why Ray Train failed: the workers' CorrvosError if any, else the first worker's (or controller's) error."""
    causes = _causes(exc)
    cause = next((c for c in causes if isinstance(c, CorrvosError)), causes[0] if causes else None)
    if cause is None:
        return _first_line(exc)
    lines = [line.strip() for line in str(cause).splitlines() if line.strip()]
    text = lines[0] if lines else ""
    if not isinstance(cause, CorrvosError):
        text = f"{type(cause).__name__}: {text}" if text else type(cause).__name__
    return text[:300]


def _causes(exc: BaseException) -> list[BaseException]:
    """The exceptions behind a Ray Train failure: each failed worker's (by rank), or the controller's."""
    if isinstance(exc, WorkerGroupError):
        return [exc.worker_failures[rank] for rank in sorted(exc.worker_failures)]
    if isinstance(exc, ControllerError):
        return [exc.controller_failure]
    return []


def read_training_state(checkpoint: ray.train.Checkpoint) -> TrainingState:
    with checkpoint.as_directory() as folder:
        return TrainingState.from_bytes(Path(folder, STATE_FILE).read_bytes())


def dataset_version(datasets: list[str], storage_options: dict[str, Any]) -> str:
    """One version for a list of datasets: their content hashes, combined in order."""
    hashes = [VideoDataset(uri, storage_options).version for uri in datasets]
    if len(hashes) == 1:
        return hashes[0]
    return hashlib.sha256("\n".join(hashes).encode()).hexdigest()[:16]


def ray_storage(uri: str, options: dict[str, Any]) -> tuple[str, pyarrow.fs.FileSystem | None]:
    """Ray Train's storage path and filesystem for a local path or any fsspec URI (S3 with custom endpoints too)."""
    if "://" not in uri or uri.startswith("file://"):
        path = os.path.abspath(uri.removeprefix("file://"))
        os.makedirs(path, exist_ok=True)
        return path, None
    fs, path = open_fs(uri, options)
    return path, pyarrow.fs.PyFileSystem(pyarrow.fs.FSSpecHandler(fs))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    cause = exc.__cause__ or exc.__context__
    detail = next((line for line in reversed(str(cause).splitlines()) if line.strip()), "") if cause else ""
    return (detail or (text[0] if text else type(exc).__name__))[:300]


