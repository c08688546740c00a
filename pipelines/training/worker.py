"""The training function: the whole contract with Ray Train, the same on 1 CPU worker or N GPUs.

It reads rank and world size from `ray.train.get_context()`, lets `ray.train.torch.prepare_model`
wrap the model in DDP (Ray owns the process group), streams this worker's share of the datasets,
and calls `ray.train.report(metrics, checkpoint)` every `checkpoint_every` steps. A restarted
worker group (FailureConfig) or a restarted stage (same run name and storage) resumes from the
latest checkpoint Ray hands back, with optimiser, step and RNG states. The steps it runs again (from
that checkpoint to where the last attempt died) were logged already: a metric is logged only at steps
past the highest one the MLflow run holds for it, so no step is logged twice.

With a `validation` entry in the payload (`PeriodicValidation`), rank 0 also scores the model on a
few validation videos every `every` steps and at the end; every rank reports that `val_jf` (Ray
Tune reads it through `TuneReportCallback`).
"""

from __future__ import annotations

import hashlib
import itertools
import os
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from typing import Any, Mapping

import ray.train
import ray.train.torch
import torch
from mlflow.tracking import MlflowClient

from components.config import CorrvosConfig, StageConfig, config_from_dict
from components.data.config import DataConfig
from components.data.loader import CacheCounts, ClipLoader, DatasetRef
from components.model import build_train_wrapper
from components.model.checkpoint import load_inference_checkpoint
from components.model.resnet import freeze_trunks
from components.training.optim import build_optimizer, learning_rate_at, set_learning_rate
from components.training.preview import prediction_grid
from components.training.state import TrainingState, capture_rng, restore_rng
from components.training.step import training_step
from components.training.transfer import load_stage_weights
from pipelines.tracking import RunLogger
from components.storage import open_fs

STATE_FILE = "state.pt"
RESUMES_TAG = "corrvos.resumed_from_steps"  # each restart's checkpoint step, in order


@dataclass(frozen=True)
class PeriodicValidation:
    """Score the model during training: J&F on the first `max_videos` videos of `datasets`, every `every` steps."""

    datasets: tuple[str, ...]
    every: int
    max_videos: int = 4

    def __post_init__(self) -> None:
        if not self.datasets or self.every < 1 or self.max_videos < 1:
            raise ValueError("periodic validation needs datasets, every >= 1 and max_videos >= 1")

    def to_payload(self) -> dict[str, Any]:
        return {**asdict(self), "datasets": list(self.datasets)}

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> "PeriodicValidation | None":
        entry = payload.get("validation")
        return cls(tuple(entry["datasets"]), entry["every"], entry["max_videos"]) if entry else None


def dataset_refs(datasets: list[str]) -> list[DatasetRef]:
    """A URI listed n times is one dataset whose videos enter each epoch n times (STCN's DAVIS x5)."""
    counts: dict[str, int] = {}
    for uri in datasets:
        counts[uri] = counts.get(uri, 0) + 1
    return [DatasetRef(uri, repeat) for uri, repeat in counts.items()]


class InjectedFault(RuntimeError):
    """Raised once, on purpose, by `fail_at_step` to prove recovery works."""


def train_worker(payload: dict[str, Any]) -> None:
    """Ray Train entry point. `payload`: config dict, stage name, dataset URIs, init weights, run ids."""
    config = config_from_dict(CorrvosConfig, payload["config"])
    stage_name: str = payload["stage"]
    stage: StageConfig = getattr(config, stage_name)
    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    device = ray.train.torch.get_device()
    if device.type == "cpu":
        torch.set_num_threads(max(1, stage.cpus_per_worker))

    model, optimizer, start_step = _build_and_restore(config, stage, payload, device)
    total = stage.iterations
    if start_step >= total:
        return
    loader = ClipLoader(
        dataset_refs(payload["datasets"]), stage.batch_size // world, rank=rank, world_size=world, seed=stage.seed,
        config=_data_config(config.data, payload), storage_options=config.storage.options,
    )
    logger = _NewStepsLogger(payload["tracking_uri"], payload["run_id"]) if rank == 0 and payload.get("run_id") else None
    validation = PeriodicValidation.from_payload(payload)
    validator = _Validator(validation, config, device, rank, world) if validation else None
    if logger and start_step > 0:
        logger.log_metrics({"resumed_from_step": start_step}, step=start_step)
        logger.note_resume(start_step)
    drop_steps = stage.lr_drop_steps  # resolved once: what `corrvos objective` prints
    window: dict[str, list[float]] = {}
    clock = time.perf_counter()
    with loader:
        asked = time.perf_counter()  # when the loop asked the loader for the next batch
        for step, batch in enumerate(loader.iterate(total, start_step), start=start_step):
            arrived = time.perf_counter()
            _maybe_inject_fault(stage, step, rank, payload.get("fault_marker"))
            progress = step / total
            lr = learning_rate_at(step, total, stage.learning_rate, drop_steps, stage.lr_gamma, stage.lr_schedule)
            set_learning_rate(optimizer, lr)
            generator = torch.Generator().manual_seed(stage.seed * 1_000_003 + rank * 7919 + step)
            values, outputs = training_step(
                model, batch.to(device), config.loss, progress, optimizer,
                step=step, precision=stage.precision, grad_clip=stage.grad_clip, generator=generator,
            )
            timing = {"data_wait_s": arrived - asked, "compute_s": time.perf_counter() - arrived}  # values synced
            for name, value in {**values, "lr": lr, **timing}.items():
                window.setdefault(name, []).append(value)
            done = step + 1
            if logger and done % stage.image_every == 0:
                logger.log_image(prediction_grid(batch, outputs["logits"]), f"previews/step-{done:07d}.png")
            checkpoint = done % stage.checkpoint_every == 0 or done == total
            validate = validator is not None and (done % validator.every == 0 or done == total)
            if done % stage.log_every == 0 or checkpoint or validate:
                elapsed, clock = time.perf_counter() - clock, time.perf_counter()
                metrics = _summarise(window, len(window.get("total", [])), elapsed, stage.batch_size, device)
                metrics.update(cache_metrics(loader.cache_counts))
                window = {}
                if validate:
                    metrics["val_jf"] = validator.score(model)  # every rank calls: rank 0 scores, the rest receive
                    clock = time.perf_counter()  # validation time is not training throughput
                if logger:
                    logger.log_metrics(metrics, step=done)
                if checkpoint or validate:
                    _report(model, optimizer, config, stage, payload, done, rank, metrics, with_checkpoint=checkpoint)
            asked = time.perf_counter()  # logging, previews, validation and checkpoints are neither wait nor step


class _NewStepsLogger(RunLogger):
    """A `RunLogger` that logs each metric only at steps past the highest one its run already holds for it.

    A resumed attempt runs again the steps between its checkpoint and the point where the last attempt
    died; those points are in the run already, and logging them again would draw every curve twice.
    """

    def __init__(self, tracking_uri: str, run_id: str) -> None:
        super().__init__(tracking_uri, run_id)
        self.logged = logged_steps(self.client, run_id)

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        fresh = {key: value for key, value in metrics.items() if step > self.logged.get(key, -1)}
        if fresh:
            super().log_metrics(fresh, step)
            self.logged.update(dict.fromkeys(fresh, step))

    def note_resume(self, step: int) -> None:
        """Append `step` to tag `corrvos.resumed_from_steps`: every restart shows, even one from a step already logged."""
        earlier = self.client.get_run(self.run_id).data.tags.get(RESUMES_TAG, "")
        self.set_tags({RESUMES_TAG: ",".join(filter(None, [earlier, str(step)]))})


def logged_steps(client: MlflowClient, run_id: str) -> dict[str, int]:
    """The highest step of every metric already logged in run `run_id` (none for a fresh run)."""
    keys = client.get_run(run_id).data.metrics.keys()
    return {key: max((m.step for m in client.get_metric_history(run_id, key)), default=-1) for key in keys}


def _build_and_restore(config: CorrvosConfig, stage: StageConfig, payload: dict[str, Any], device: torch.device):
    """Model (DDP-wrapped by Ray), optimiser, and the step to start from."""
    torch.manual_seed(stage.seed)
    model_config = config.model if payload["stage"] != "pretrain" else _single_object(config)
    model = build_train_wrapper(model_config)
    if not config.loss.uses_correspondence:
        model.correspondence_head.requires_grad_(False)  # unused: keep DDP from waiting for its gradients
    if payload.get("init_weights"):
        initial, _ = load_inference_checkpoint(payload["init_weights"])
        load_stage_weights(model, initial.state_dict())
    freeze_trunks(model, stage.freeze_at)  # before the optimiser: frozen parameters get no optimiser state
    optimizer = build_optimizer(model, stage.optimizer, stage.learning_rate, stage.weight_decay, stage.layerwise_lr)
    start_step = 0
    checkpoint = ray.train.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            with open(os.path.join(folder, STATE_FILE), "rb") as handle:
                state = TrainingState.from_bytes(handle.read())
        model.load_state_dict(state.model)
        optimizer.load_state_dict(state.optimizer)
        restore_rng(state.rng)
        start_step = state.step
    model = ray.train.torch.prepare_model(model, parallel_strategy_kwargs={"find_unused_parameters": False})
    return model, optimizer, start_step


def _single_object(config: CorrvosConfig):
    return replace(config.model, single_object=True)


def _data_config(data: DataConfig, payload: dict[str, Any]) -> DataConfig:
    if payload["stage"] == "pretrain":  # every source becomes single-object pseudo-videos of one frame
        return replace(data, sampler=replace(data.sampler, max_objects=1, mode="static"))
    return data


def _summarise(window: dict[str, list[float]], steps: int, seconds: float, batch_size: int, device: torch.device) -> dict[str, float]:
    """Window means of every logged value, throughput, the data-wait share of step time, GPU memory."""
    metrics = {name: sum(v) / len(v) for name, v in window.items() if v}
    metrics["samples_per_s"] = steps * batch_size / seconds if seconds > 0 else 0.0
    waited, computed = sum(window.get("data_wait_s", [])), sum(window.get("compute_s", []))
    if waited + computed > 0:  # the share of step time spent waiting for batches: near 1 is a loader-bound run
        metrics["data_wait_share"] = waited / (waited + computed)
    if device.type == "cuda":
        metrics["gpu_mem_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
    return metrics


def cache_metrics(counts: Mapping[str, CacheCounts]) -> dict[str, float]:
    """Each loader cache's hit rate so far in this attempt (`encoded_cache_hit_rate`, `decoded_cache_hit_rate`)
    and `decoded_cache_on` (0 once it switched itself off): beside `data_wait_share`, why a run waits."""
    metrics = {f"{name}_cache_hit_rate": c.hit_rate for name, c in counts.items()}
    metrics["decoded_cache_on"] = 0.0 if counts["decoded"].switched_off else 1.0
    return metrics


def _report(model, optimizer, config: CorrvosConfig, stage: StageConfig, payload: dict[str, Any],
            step: int, rank: int, metrics: dict[str, float], with_checkpoint: bool = True) -> None:
    """Every worker reports, with digests of its weights; rank 0 attaches the checkpoint (weights are
    identical across DDP ranks: `weights_digest` lets a test see that)."""
    bare = model.module if hasattr(model, "module") else model
    metrics = {**metrics, "step": step, "weights_digest": weights_digest(bare),
               "buffers_digest": weights_digest(bare, buffers=True)}
    if rank != 0 or not with_checkpoint:
        ray.train.report(metrics)
        return
    state = TrainingState(
        step=step,
        model={k: v.detach().cpu() for k, v in bare.state_dict().items()},
        optimizer=optimizer.state_dict(),
        rng=capture_rng(),
        config=payload["config_public"],
        dataset_version=payload.get("dataset_version", ""),
    )
    with tempfile.TemporaryDirectory() as folder:
        with open(os.path.join(folder, STATE_FILE), "wb") as handle:
            handle.write(state.to_bytes())
        ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(folder),
                         checkpoint_dir_name=f"checkpoint-{step:08d}")


def weights_digest(module: torch.nn.Module, buffers: bool = False) -> float:
    """A 48-bit hash of the parameters (`buffers`: of the buffers) by name and bytes, as an exact float
    metric: equal weights give equal digests. A few ms for the `small` model."""
    digest = hashlib.sha256()
    for name, tensor in module.named_buffers() if buffers else module.named_parameters():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().reshape(-1).view(torch.uint8).numpy().tobytes())
    return float(int(digest.hexdigest()[:12], 16))


class _Validator:
    """Rank 0 propagates through the first validation videos and scores J&F; other ranks receive the score."""

    def __init__(self, validation: PeriodicValidation, config: CorrvosConfig, device: torch.device,
                 rank: int, world: int) -> None:
        self.every = validation.every
        self.inference = config.inference
        self.device = device
        self.rank = rank
        self.world = world
        self.videos = _validation_videos(validation, config.storage.options) if rank == 0 else []

    def score(self, model: torch.nn.Module) -> float:
        """Mean J&F of the current weights; a collective call when there are several workers."""
        value = self._evaluate(model) if self.rank == 0 else 0.0
        if self.world > 1 and torch.distributed.is_available() and torch.distributed.is_initialized():
            shared = torch.tensor([value], dtype=torch.float64, device=self.device)
            torch.distributed.broadcast(shared, src=0)
            value = float(shared.item())
        return value

    def _evaluate(self, model: torch.nn.Module) -> float:
        from components.evaluation.evaluate import evaluate_videos

        bare = model.module if hasattr(model, "module") else model
        training = bare.training
        try:
            with tempfile.TemporaryDirectory(prefix="corrvos-val-") as folder:
                run = evaluate_videos(bare, self.videos, folder, self.inference, self.device, progress=False, reports=False)
            return float(run.jf_mean)
        finally:
            bare.train(training)  # the propagator switched it to eval mode


def _validation_videos(validation: PeriodicValidation, storage_options: dict[str, Any]) -> list:
    """The first `max_videos` videos over the validation datasets, names made unique across datasets."""
    from components.evaluation.videos import dataset_videos

    chained = itertools.chain.from_iterable(dataset_videos(uri, storage_options=storage_options) for uri in validation.datasets)
    videos = []
    for video in itertools.islice(chained, validation.max_videos):
        if any(v.name == video.name for v in videos):
            video = replace(video, name=f"{video.name}-{len(videos)}")
        videos.append(video)
    return videos


def _maybe_inject_fault(stage: StageConfig, step: int, rank: int, marker: str | None) -> None:
    """Raise once at `fail_at_step` on rank 0; a marker file on storage makes it happen only once."""
    if stage.fail_at_step is None or step != stage.fail_at_step or rank != 0 or marker is None:
        return
    fs, path = open_fs(marker)
    if fs.exists(path):
        return
    fs.makedirs(os.path.dirname(path), exist_ok=True)
    with fs.open(path, "wb") as handle:
        handle.write(str(step).encode())
    raise InjectedFault(f"fault injected at step {step} (train.fail_at_step)")
