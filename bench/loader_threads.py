"""Training steps fed by `ClipLoader`: batches built between steps (0 decode threads) vs by background threads.

    python -m bench.loader_threads                       # the CPU demo's shape: small, batch 4, 96 px crops
    python -m bench.loader_threads --threads 0,1,2 --steps 30

Each setting runs the real `training_step` (released weights, the demo config's model and loss) on
batches from a `ClipLoader` over synthetic videos it ingests into a temporary folder, with
`data.loader.num_workers` set to each value in turn; the first steps are not timed. On a CPU where
torch's threads already use every core, a decode thread preempts one of them and every parallel op
waits for it, so building batches in the step's own thread can be the faster choice; on a GPU the
cores are free and the threads win. Threads change only when a batch is built, not what it holds
(every clip is drawn from its own seeded generator), so every setting trains on the same batches
from the same weights: each line ends with the loss of its last step, the same for every setting.
The last line is the ratio of the first setting's median step time to the best other setting's.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from bench.device import describe
from components.config import CorrvosConfig, config_from_dict
from components.data.config import IngestConfig
from components.data.ingest import ingest
from components.data.loader import ClipLoader
from components.model import build_train_wrapper
from components.training.optim import build_optimizer
from components.training.step import training_step


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", default="1,0", help="comma-separated data.loader.num_workers values")
    parser.add_argument("--steps", type=int, default=24, help="timed steps per setting")
    parser.add_argument("--warmup", type=int, default=4)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--size", type=int, default=96, help="crop side in pixels")
    parser.add_argument("--torch-threads", type=int, default=2)
    return parser.parse_args(argv)


def time_steps(config: CorrvosConfig, dataset: str, workers: int, args: argparse.Namespace) -> tuple[list[float], float]:
    """Seconds per timed training step, batch fetch included, with `workers` decode threads; the last step's loss."""
    data = replace(config.data, loader=replace(config.data.loader, num_workers=workers))
    torch.manual_seed(0)
    model = build_train_wrapper(config.model).train()
    stage = config.train
    optimizer = build_optimizer(model, stage.optimizer, stage.learning_rate, stage.weight_decay, stage.layerwise_lr)
    total = args.warmup + args.steps
    times: list[float] = []
    with ClipLoader(dataset, args.batch, seed=0, config=data) as loader:
        clock = time.perf_counter()
        for step, batch in enumerate(loader.iterate(total)):
            values, _ = training_step(model, batch, config.loss, 0.5, optimizer, step=step, grad_clip=stage.grad_clip,
                                      generator=torch.Generator().manual_seed(step))
            now = time.perf_counter()
            if step >= args.warmup:
                times.append(now - clock)
            clock = now
    return times, values["total"]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings = [int(v) for v in args.threads.split(",") if v.strip()]
    if len(settings) < 2:
        raise SystemExit("--threads needs at least two settings to compare")
    torch.set_num_threads(args.torch_threads)
    config = config_from_dict(CorrvosConfig, {
        "model": {"preset": "small"},
        "loss": {"preset": "released"},
        "data": {"augment": {"crop_size": args.size}},
        "train": {"preset": "demo", "learning_rate": 4e-4},
    })
    medians, losses = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        dataset = str(Path(tmp) / "synthetic")
        ingest("synthetic", "videos=16,frames=24,size=128,seed=0", dataset, IngestConfig(engine="threads"), progress=False)
        for workers in settings:
            times, losses[workers] = time_steps(config, dataset, workers, args)
            medians[workers] = statistics.median(times)
    print(f"small preset, released weights, batch {args.batch} x 3 frames x {args.size} px ({describe(torch.device('cpu'))})")
    for workers, seconds in medians.items():
        print(f"decode threads {workers}: {seconds * 1000:7.1f} ms/step  {args.batch / seconds:6.2f} clips/s "
              f"(median of {args.steps}; loss at step {args.warmup + args.steps}: {losses[workers]:.6f})")
    first, others = settings[0], settings[1:]
    best = min(others, key=medians.get)
    print(f"step time, {first} vs {best} decode threads: {medians[first] / medians[best]:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
