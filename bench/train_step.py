"""Time one training step with `baseline` weights and with `released` + `ocl` weights on the same batch.

    python -m bench.train_step --preset small
    python -m bench.train_step --preset stcn --device cuda --bf16
    python -m bench.train_step --model xmem                 # XMem: 8-frame clips, 3 objects

Both configurations run interleaved on the same batch, model initialisation and optimiser
settings; the median step time of each is compared. Each line also says how many steps that
configuration ran and the loss terms its last step computed (so the correspondence arm is seen to
compute pcl and cross_view, the baseline only the segmentation loss). The last line is the ratio.
"""

from __future__ import annotations

import argparse
import statistics
import time
from contextlib import nullcontext
from typing import Any

import torch

from bench.device import describe, synchronise
from components.config import LossConfig, ModelConfig, config_from_dict
from components.losses import compute_losses
from components.model import build_train_wrapper
from components.training.batch import ClipBatch, random_clip_batch

DEFAULTS = {"small": {"batch": 4, "size": 192}, "stcn": {"batch": 8, "size": 384}}
CORRESPONDENCE = {"preset": "released", "ocl_weight": 0.1}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=("stcn", "xmem"), default="stcn", help="base network")
    parser.add_argument("--preset", choices=sorted(DEFAULTS), default="small", help="sizes (stcn = the paper's)")
    parser.add_argument("--output-stride", type=int, choices=(8, 16), default=16,
                        help="key/value grid stride (8: dilated layer3, the CPU demo's)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, help="clips per step (default: 4 small, 8 stcn)")
    parser.add_argument("--size", type=int, help="crop side in pixels (default: 192 small, 384 stcn)")
    parser.add_argument("--frames", type=int, help="frames per clip (default: 3 stcn, 8 xmem)")
    parser.add_argument("--objects", type=int, help="objects per clip (default: 2 stcn, 3 xmem)")
    parser.add_argument("--steps", type=int, default=8, help="timed steps per configuration")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast (GPU); losses stay fp32")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def make_step(model: torch.nn.Module, loss_config: LossConfig, batch: ClipBatch, device: torch.device, bf16: bool,
              record: dict[str, Any]):
    """A closure running forward, losses, backward and an optimiser step; returns seconds taken. It counts
    its calls in `record["steps"]` and keeps the last step's loss terms (name -> value) in `record["terms"]`."""
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-5)
    autocast = (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if bf16 else nullcontext
    generator = torch.Generator().manual_seed(0)
    record["steps"] = 0

    def step() -> float:
        synchronise(device)
        start = time.perf_counter()
        with autocast():
            outputs = model(batch, with_correspondence=loss_config.uses_correspondence, generator=generator)
            terms = compute_losses(outputs, batch, loss_config, progress=1.0, iteration=150_000, generator=generator)
        optimiser.zero_grad(set_to_none=True)
        terms["total"].backward()
        optimiser.step()
        synchronise(device)
        seconds = time.perf_counter() - start
        record["steps"] += 1
        record["terms"] = {k: v.item() for k, v in terms.items() if k not in ("total", "lambda", "bootstrap_p")}
        return seconds

    return step


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = torch.device(args.device)
    batch_size = args.batch or DEFAULTS[args.preset]["batch"]
    size = args.size or DEFAULTS[args.preset]["size"]
    torch.manual_seed(args.seed)
    model_config = config_from_dict(ModelConfig, {"preset": args.preset, "name": args.model,
                                                  "output_stride": args.output_stride})
    frames = args.frames or (8 if args.model == "xmem" else 3)
    objects = args.objects or (3 if args.model == "xmem" else 2)
    batch = random_clip_batch(batch_size, frames, size, objects, torch.Generator().manual_seed(args.seed)).to(device)
    configs = {
        "baseline": config_from_dict(LossConfig, {"preset": "baseline"}),
        "released+ocl": config_from_dict(LossConfig, CORRESPONDENCE),
    }
    steps, times, records = {}, {}, {}
    for name, loss_config in configs.items():
        torch.manual_seed(args.seed)  # identical initial weights for both
        model = build_train_wrapper(model_config).to(device).train()
        records[name] = {}
        steps[name] = make_step(model, loss_config, batch, device, args.bf16, records[name])
        times[name] = []
    for _ in range(args.warmup):
        for step in steps.values():
            step()
    for _ in range(args.steps):  # interleaved so drift in machine load hits both alike
        for name, step in steps.items():
            times[name].append(step())
    where = describe(device)
    print(f"model={args.model} preset={args.preset} output_stride={args.output_stride} device={device} ({where}) "
          f"batch={batch_size}x{frames}x{size}px objects={objects} bf16={args.bf16}")
    medians = {}
    for name, values in times.items():
        medians[name] = statistics.median(values)
        terms = ", ".join(f"{k} {v:.4g}" for k, v in records[name]["terms"].items())
        print(f"{name:>14}: {medians[name] * 1000:8.1f} ms/step  {batch_size / medians[name]:7.2f} clips/s  "
              f"(median of {len(values)}; {records[name]['steps']} steps run; loss terms: {terms})")
    if device.type == "cuda":
        print(f"peak GPU memory: {torch.cuda.max_memory_allocated(device) / 2**30:.2f} GiB")
    print(f"correspondence overhead: {medians['released+ocl'] / medians['baseline']:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
