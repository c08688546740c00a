"""Time the product's training step with the `baseline` and the `released` loss preset on the same batches.

    python -m bench.train_step                        # configs/demo.yaml's train stage, as `make run` trains it
    python -m bench.train_step --set model.name=xmem  # the same with XMem
    python -m bench.train_step --config configs/stcn-released.yaml --device cuda --data videos=16,frames=24,size=480

Each arm is the config with `loss.preset` set to its name (presets apply before the config's explicit
loss keys, as `corrvos run ... --set loss.preset=baseline` does). Its model and optimiser are made as
the train stage's Ray worker makes them (`pipelines/training/worker.py`: seeded, head g frozen when no
term uses it, trunk freezing, the stage's optimiser and learning rate at the step's progress), and
each step is `components.training.step.training_step` with the stage's precision and grad_clip and the
worker's per-step generator. The batches are real `ClipLoader` batches of the config's data settings
over synthetic videos ingested into a temporary folder, fetched before any timing (the loader is
`bench.data`'s subject) and the same for both arms. Steps alternate between the arms so drift in
machine load hits both alike; the medians are compared. Each arm's line gives the steps it ran and
its last step's loss terms (the released arm computes pcl and cross_view, the baseline does not).
The last line is the ratio: what the correspondence terms cost per step.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from bench.device import describe, synchronise
from components.config import CorrvosConfig, StageConfig, load_yaml_config
from components.data.config import IngestConfig
from components.data.ingest import ingest
from components.data.loader import ClipLoader
from components.model import build_train_wrapper
from components.model.resnet import freeze_trunks
from components.precision import resolved_precision
from components.training.batch import ClipBatch
from components.training.optim import (
    build_optimizer,
    learning_rate_at,
    set_learning_rate,
)
from components.training.step import training_step

DEMO = Path(__file__).resolve().parents[1] / "configs" / "demo.yaml"
ARMS = ("baseline", "released")
REPORTED = {"total", "lambda", "bootstrap_p", "grad_norm"}  # not loss terms


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; the defaults time the demo's train stage on this machine."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=DEMO, help="a corrvos config (default: configs/demo.yaml)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="config override, as on the corrvos command line (repeatable)")
    parser.add_argument("--stage", choices=("train",), default="train", help="the stage whose step is timed")
    parser.add_argument("--data", default="videos=16,frames=24,size=128,seed=0", help="synthetic videos to batch")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--progress", type=float, default=0.7,
                        help="where in the stage the steps are (0.7: past the demo's lambda ramp, every term weighs)")
    parser.add_argument("--steps", type=int, default=8, help="timed steps per arm")
    parser.add_argument("--warmup", type=int, default=2)
    return parser.parse_args(argv)


class Arm:
    """One loss preset's model, optimiser and step times, built as the train stage's worker builds them."""

    def __init__(self, config: CorrvosConfig, stage: StageConfig, device: torch.device) -> None:
        self.config, self.stage, self.device = config, stage, device
        torch.manual_seed(stage.seed)  # identical initial weights in every arm
        model = build_train_wrapper(config.model)
        if not config.loss.uses_correspondence:
            model.correspondence_head.requires_grad_(False)
        freeze_trunks(model, stage.freeze_at)
        self.model = model.to(device).train()
        self.optimizer = build_optimizer(self.model, stage.optimizer, stage.learning_rate, stage.weight_decay,
                                         stage.layerwise_lr)
        self.times: list[float] = []
        self.terms: dict[str, float] = {}

    def step(self, batch: ClipBatch, step: int) -> float:
        """One `training_step` at stage iteration `step`, as the worker calls it; seconds taken."""
        progress = step / self.stage.iterations
        set_learning_rate(self.optimizer, learning_rate_at(step, self.stage.iterations, self.stage.learning_rate,
                                                           self.stage.lr_drop_steps, self.stage.lr_gamma,
                                                           self.stage.lr_schedule))
        generator = torch.Generator().manual_seed(self.stage.seed * 1_000_003 + step)  # the worker's, rank 0
        synchronise(self.device)
        start = time.perf_counter()
        values, _ = training_step(self.model, batch.to(self.device), self.config.loss, progress, self.optimizer,
                                  step=step, precision=self.stage.precision, grad_clip=self.stage.grad_clip,
                                  generator=generator)
        synchronise(self.device)
        seconds = time.perf_counter() - start
        self.terms = {k: v for k, v in values.items() if k not in REPORTED}
        return seconds


def real_batches(config: CorrvosConfig, stage: StageConfig, data: str, count: int, folder: Path) -> list[ClipBatch]:
    """`count` ClipLoader batches (one worker's share of the stage's batch) over synthetic videos `data`."""
    uri = str(folder / "synthetic")
    ingest("synthetic", data, uri, IngestConfig(engine="threads"), progress=False)
    loading = replace(config.data, loader=replace(config.data.loader, num_workers=0))
    with ClipLoader(uri, stage.batch_size // stage.num_workers, seed=stage.seed, config=loading) as loader:
        return list(loader.iterate(count))


def main(argv: list[str] | None = None) -> int:
    """Time both arms' steps on the same batches; print each arm's figures and the overhead ratio."""
    args = parse_args(argv)
    device = torch.device(args.device)
    configs = {arm: load_yaml_config(CorrvosConfig, args.config, [*args.overrides, f"loss.preset={arm}"])
               for arm in ARMS}
    stage: StageConfig = getattr(configs["released"], args.stage)
    if device.type == "cpu":
        torch.set_num_threads(max(1, stage.cpus_per_worker))  # as the worker sets it
    with tempfile.TemporaryDirectory(prefix="corrvos-bench-") as tmp:
        batches = real_batches(configs["released"], stage, args.data, args.warmup + args.steps, Path(tmp))
    arms = {arm: Arm(configs[arm], getattr(configs[arm], args.stage), device) for arm in ARMS}
    first = int(args.progress * stage.iterations)
    for i, batch in enumerate(batches):  # alternating, so drift in machine load hits both arms alike
        for arm in arms.values():
            seconds = arm.step(batch, first + i)
            if i >= args.warmup:
                arm.times.append(seconds)
    model, shape = configs["released"].model, tuple(batches[0].masks.shape)
    print(f"{args.config.name} {args.stage} stage: {model.name}/{model.preset} output stride {model.output_stride}, "
          f"batch {shape[0]} x {shape[1]} frames x {shape[3]} px, {shape[2]} object slots, precision {stage.precision}"
          f" -> {resolved_precision(stage.precision, device.type)}, grad_clip {stage.grad_clip}, steps from"
          f" {first} of {stage.iterations}; ClipLoader batches of synthetic {args.data}; {device} ({describe(device)})")
    medians = {}
    for name, arm in arms.items():
        medians[name] = statistics.median(arm.times)
        terms = ", ".join(f"{k} {v:.4g}" for k, v in arm.terms.items())
        print(f"{name:>9}: {medians[name] * 1000:8.1f} ms/step  {shape[0] / medians[name]:7.2f} clips/s  (median of "
              f"{len(arm.times)}; {len(batches)} steps run; loss terms: {terms})")
    if device.type == "cuda":
        print(f"peak GPU memory: {torch.cuda.max_memory_allocated(device) / 2**30:.2f} GiB")
    print(f"correspondence overhead (released vs baseline step): {medians['released'] / medians['baseline']:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
