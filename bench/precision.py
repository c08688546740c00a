"""fp32 vs bf16 autocast on one device: a training step and STCN propagation, same weights and inputs.

    python -m bench.precision                      # the CPU demo's shapes: small, batch 4, 96 px crops
    python -m bench.precision --device cuda --size 384 --batch 8

`precision: auto` picks bf16 where the hardware has it natively (a GPU with bf16, a CPU with
AVX512-BF16 or AMX; `components/precision.py`). This bench shows what that buys on the machine it runs
on: the median time of a `released` training step and of propagating a synthetic video in each
precision, interleaved, and how far bf16 moves the predicted labels. Each timing line names the dtype
the model's keys were computed in (its key projection's output), so a bf16 arm that silently ran in
fp32 shows. The last line is the ratio.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import replace

import numpy as np
import torch

from bench.device import describe, synchronise
from bench.inference import synthetic_video
from components.config import CorrvosConfig, config_from_dict
from components.inference.propagate import VideoPropagator
from components.model import build_network, build_train_wrapper
from components.precision import has_native_bf16
from components.training.batch import random_clip_batch
from components.training.optim import build_optimizer
from components.training.step import training_step

PRECISIONS = ("fp32", "bf16")


class KeyDtypes:
    """The dtypes a model's key projection produced since the last `take()`: what its convolutions ran in."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.seen: set[str] = set()
        model.key_proj.register_forward_hook(lambda _module, _inputs, keys: self.seen.add(str(keys.dtype).removeprefix("torch.")))

    def take(self) -> str:
        names, self.seen = ", ".join(sorted(self.seen)), set()
        return names


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--model-preset", default="small", help="model.preset (small: the CPU demo's network)")
    parser.add_argument("--output-stride", type=int, choices=(8, 16), default=8,
                        help="model.output_stride (8: the CPU demo's dilated layer3)")
    parser.add_argument("--batch", type=int, default=4, help="clips per training step")
    parser.add_argument("--size", type=int, default=96, help="training crop side in pixels")
    parser.add_argument("--video-size", type=int, default=224, help="propagated video side (the demo reads at 224)")
    parser.add_argument("--frames", type=int, default=12, help="frames of the propagated video")
    parser.add_argument("--steps", type=int, default=8, help="timed training steps per precision")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved propagation rounds per precision")
    parser.add_argument("--torch-threads", type=int, default=2)
    return parser.parse_args(argv)


def step_times(config: CorrvosConfig, args: argparse.Namespace, device: torch.device
               ) -> tuple[dict[str, list[float]], dict[str, str]]:
    """Seconds per training step in each precision, interleaved on one batch from one initialisation, and
    the dtypes each precision's keys were computed in."""
    batch = random_clip_batch(args.batch, 3, args.size, 2, generator=torch.Generator().manual_seed(0)).to(device)
    stage = config.train
    models = {}
    for precision in PRECISIONS:
        torch.manual_seed(0)
        model = build_train_wrapper(config.model).to(device).train()
        optimizer = build_optimizer(model, stage.optimizer, stage.learning_rate, stage.weight_decay, stage.layerwise_lr)
        models[precision] = (model, optimizer, KeyDtypes(model))
    times: dict[str, list[float]] = {p: [] for p in PRECISIONS}
    for step in range(args.steps + 1):  # the first step of each is warm-up
        for precision, (model, optimizer, _) in models.items():
            synchronise(device)
            start = time.perf_counter()
            training_step(model, batch, config.loss, 0.5, optimizer, step=step, precision=precision,
                          grad_clip=stage.grad_clip, generator=torch.Generator().manual_seed(step))
            synchronise(device)
            if step:
                times[precision].append(time.perf_counter() - start)
    return times, {precision: dtypes.take() for precision, (_, _, dtypes) in models.items()}


def propagation_times(config: CorrvosConfig, args: argparse.Namespace, device: torch.device
                      ) -> tuple[dict[str, float], float, dict[str, str]]:
    """Best frames/s of each precision over interleaved rounds, the share of pixels whose label agrees, and
    the dtypes each precision's keys were computed in."""
    torch.manual_seed(0)
    model = build_network(config.model).to(device).eval()
    key_dtypes, seen = KeyDtypes(model), {}
    frames, first = synthetic_video(args.frames, args.video_size, args.video_size)
    fps: dict[str, float] = {p: 0.0 for p in PRECISIONS}
    labels: dict[str, list[np.ndarray]] = {}
    for _ in range(args.rounds):
        for precision in PRECISIONS:
            inference = replace(config.inference, precision=precision, memory_every=1)
            result = VideoPropagator(model, inference, device).propagate(frames, {0: first})
            seen[precision] = key_dtypes.take()
            fps[precision] = max(fps[precision], result.fps)
            labels[precision] = result.labels
    agree = float(np.mean([np.mean(a == b) for a, b in zip(labels["fp32"], labels["bf16"])]))
    return fps, agree, seen


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.torch_threads)
    device = torch.device(args.device)
    config = config_from_dict(CorrvosConfig, {"model": {"preset": args.model_preset, "output_stride": args.output_stride}})
    print(f"device={device} ({describe(device)}) torch {torch.__version__}; output_stride={args.output_stride}; "
          f"native bf16: {has_native_bf16(device)} (what `precision: auto` follows)")
    times, dtypes = step_times(config, args, device)
    steps = {p: statistics.median(v) for p, v in times.items()}
    for precision, seconds in steps.items():
        print(f"train step {precision:>4}: {seconds * 1000:8.1f} ms  ({args.batch} clips, {args.size} px, median of "
              f"{args.steps}; keys in {dtypes[precision]})")
    fps, agree, dtypes = propagation_times(config, args, device)
    for precision, value in fps.items():
        print(f"propagate  {precision:>4}: {value:8.1f} frames/s  ({args.video_size} px, {args.frames} frames, best of "
              f"{args.rounds}; keys in {dtypes[precision]})")
    print(f"bf16 labels agree with fp32 on {agree * 100:.1f}% of pixels (untrained weights)")
    print(f"bf16 vs fp32 speed-up: train step {steps['fp32'] / steps['bf16']:.2f}x, propagation {fps['bf16'] / fps['fp32']:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
