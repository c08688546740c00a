"""Frames per second of the propagation engine at 480p, against a straightforward per-frame loop.

    python -m bench.inference                              # CPU: both presets, a few frames
    python -m bench.inference --device cuda --frames 100   # GPU
    python -m bench.inference --model xmem                 # XMem's engine against STCN's, same sizes
    python -m bench.inference --top-k 0                    # the engine with the reference's full softmax
    python -m bench.inference --against-official PATH      # against the official STCN/XMem loop (bench/against_official.py)

A synthetic single-object video (a textured ellipse drifting over a panning texture, 854x480 for
--size 480) runs through randomly initialised `stcn` and `small` models: once with our engine
(`VideoPropagator`, default `InferenceConfig`: memory every 5 frames, top-k 20) and once with the
reference loop below (same model and precision, one object at a time through
encode_value / read / decoder, full softmax over memory). Both time the model only (frames are
already in memory; tensor conversion and the label's copy to the host are counted in both).
Engine and reference alternate for a few rounds and the best FPS of each is kept. How far their
labels agree is printed beside (share of pixels, and the IoU of the object over frames 1+); with
`--top-k 0` the engine reads memory with the same full softmax, so the two compute the same thing
and should agree all but exactly. The last line is the ratio of the engine's FPS to the
reference's, the worst over the presets.

With `--model xmem` the XMem engine (`XMemPropagator`: sensory memory, working memory, long-term
prototypes, top-k 30) runs against the STCN engine built with the same preset sizes; the last line
is XMem's FPS over STCN's, the worst over the presets.
"""

from __future__ import annotations

import argparse
import math
import time
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from bench import against_official
from bench.device import describe, synchronise
from components.config import InferenceConfig, ModelConfig, config_from_dict
from components.inference import propagator_for
from components.model import STCN, build_network
from components.precision import autocast_for, uses_bf16

CPU_FRAMES = {"stcn": 5, "small": 20}  # ~2 minutes on 2 idle cores: `stcn` runs at under 1 frame/s at 480p
GPU_FRAMES = 100  # about a DAVIS sequence (memory grows to 20 frames)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--model", choices=("stcn", "xmem"), default="stcn",
                        help="stcn: engine vs reference loop; xmem: XMem's engine vs STCN's")
    parser.add_argument("--presets", default="stcn,small", help="comma-separated model presets (sizes)")
    parser.add_argument("--output-stride", type=int, choices=(8, 16), default=16,
                        help="key/value grid stride (the papers' 16; the CPU demo trains at 8)")
    parser.add_argument("--frames", type=int, help=f"frames timed per run (default on CPU: "
                        f"{', '.join(f'{k} {v}' for k, v in CPU_FRAMES.items())}; on GPU: {GPU_FRAMES})")
    parser.add_argument("--size", type=int, default=480, help="short side in pixels; the long side is 16:9")
    parser.add_argument("--rounds", type=int, help="engine and reference run alternately this many "
                        "times; the best FPS of each counts (robust to other load on the machine; default 3, "
                        "1 with --against-official)")
    parser.add_argument("--warmup", type=int, default=1, help="frames run untimed first, per preset")
    parser.add_argument("--top-k", type=int, default=20, help="the STCN engine's inference.top_k (0: full "
                        "softmax, the reference loop's read)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--against-official", metavar="PATH", type=Path,
                        help="a clone of the official STCN, XMem or VOS_Correspondence repository: compare "
                             "corrvos's engine with its evaluation loop (see bench/against_official.py)")
    against_official.add_arguments(parser)
    args = parser.parse_args(argv)
    if args.rounds is None:
        args.rounds = 1 if args.against_official else 3
    return args


def synthetic_video(frames: int, height: int, width: int, seed: int = 0) -> tuple[list[np.ndarray], np.ndarray]:
    """RGB frames of a textured ellipse moving over a panning texture, and frame 0's mask (object 1)."""
    rng = np.random.default_rng(seed)
    texture = rng.integers(0, 256, (height + frames, width + 2 * frames, 3), dtype=np.uint8)
    sprite = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    yy, xx = np.mgrid[:height, :width]
    video, first = [], None
    for t in range(frames):
        cy, cx = height * (0.5 + 0.1 * math.sin(t / 7)), width * (0.3 + 0.4 * t / max(frames, 1))
        inside = ((yy - cy) / (0.25 * height)) ** 2 + ((xx - cx) / (0.15 * width)) ** 2 <= 1
        frame = texture[t : t + height, 2 * t : 2 * t + width].copy()
        frame[inside] = sprite[inside]
        video.append(frame)
        if first is None:
            first = inside.astype(np.uint8)
    return video, first


def engine_run(
    model: STCN, frames: list[np.ndarray], mask: np.ndarray, device: torch.device, top_k: int | None = 20
) -> tuple[float, list[np.ndarray]]:
    """(frames per second, label maps) of our engine with its default settings but `top_k` (None: full softmax)."""
    result = propagator_for(model, InferenceConfig(top_k=top_k), device).propagate(frames, {0: mask})
    return result.fps, result.labels


def reference_run(
    model: STCN, frames: list[np.ndarray], mask: np.ndarray, device: torch.device, autocast: AbstractContextManager,
    memory_every: int = 5,
) -> tuple[float, list[np.ndarray]]:
    """(frames per second, label maps) of a plain STCN loop: full softmax read, one object, no batching."""
    height, width = mask.shape
    pad_h, pad_w = (-height) % 16, (-width) % 16
    pad = (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2)
    crop = (slice(pad[2], pad[2] + height), slice(pad[0], pad[0] + width))
    keys, values, labels, seconds = [], [], [], 0.0
    with torch.inference_mode(), autocast:
        for t, frame in enumerate(frames):
            synchronise(device)
            start = time.perf_counter()
            x = torch.from_numpy(frame).to(device).permute(2, 0, 1)[None].float() / 255  # 1, 3, H, W
            x = F.pad(x, pad, mode="replicate")
            features = model.encode_key(x)
            if t == 0:
                prob = F.pad(torch.from_numpy(mask).to(device).float()[None, None], pad)  # 1, 1, H', W'
            else:
                readout = model.read(torch.stack(keys, dim=2), torch.stack(values, dim=3), features.key, top_k=None)
                logits, _ = model.segment(features, readout)  # 1, 2, H', W' over {background, object}
                prob = torch.softmax(logits, dim=1)[:, 1:]
            if t % memory_every == 0:
                keys.append(features.key)
                values.append(model.encode_value(x, features.f16, prob))  # 1, 1, Cv, h, w
            labels.append((prob[0, 0][crop] > 0.5).to(torch.uint8).cpu().numpy())
            synchronise(device)
            seconds += time.perf_counter() - start
    return len(frames) / seconds, labels


def frame_count(preset: str, args: argparse.Namespace, device: torch.device) -> int:
    if args.frames:
        return args.frames
    return GPU_FRAMES if device.type == "cuda" else CPU_FRAMES.get(preset, min(CPU_FRAMES.values()))


def preset_video(preset: str, args: argparse.Namespace, device: torch.device) -> tuple[list[np.ndarray], np.ndarray]:
    """The synthetic video timed for `preset`: its frame count at `--size` (16:9), and frame 0's mask."""
    height, width = args.size, round(args.size * 16 / 9 / 2) * 2
    return synthetic_video(frame_count(preset, args, device), height, width, args.seed)


def best_of_rounds(runs: dict[str, Callable[[], tuple[float, list[np.ndarray]]]], rounds: int
                   ) -> tuple[dict[str, float], dict[str, list[np.ndarray]]]:
    """Best FPS of each run over `rounds` interleaved rounds (order flipped every round, so load hits
    both alike), and each run's last label maps."""
    names = list(runs)
    best, labels = dict.fromkeys(names, 0.0), {}
    for round_index in range(rounds):
        for name in (names if round_index % 2 == 0 else names[::-1]):
            fps, labels[name] = runs[name]()
            best[name] = max(best[name], fps)
    return best, labels


def object_iou(labels: list[np.ndarray], reference: list[np.ndarray]) -> float:
    """IoU of the object in `labels` and in `reference` over frames 1+ (frame 0 is given); nan when both are empty."""
    pairs = [(a > 0, b > 0) for a, b in zip(labels[1:], reference[1:])]
    union = sum(int(np.sum(a | b)) for a, b in pairs)
    return sum(int(np.sum(a & b)) for a, b in pairs) / union if union else float("nan")


def bench_preset(preset: str, args: argparse.Namespace, device: torch.device) -> tuple[float, float, float, float]:
    """(engine fps, reference fps, pixel agreement of their labels, object IoU between them) for one preset."""
    torch.manual_seed(args.seed)
    model = STCN(config_from_dict(ModelConfig, {"preset": preset, "output_stride": args.output_stride})).to(device).eval()
    frames, mask = preset_video(preset, args, device)
    top_k = args.top_k or None
    if args.warmup:
        engine_run(model, frames[: args.warmup], mask, device, top_k)
        reference_run(model, frames[: args.warmup], mask, device, autocast_for(device, "auto"))
    best, labels = best_of_rounds({
        "engine": lambda: engine_run(model, frames, mask, device, top_k),
        "reference": lambda: reference_run(model, frames, mask, device, autocast_for(device, "auto")),
    }, args.rounds)
    agreement = float(np.mean([np.mean(a == b) for a, b in zip(labels["engine"], labels["reference"])]))
    return best["engine"], best["reference"], agreement, object_iou(labels["engine"], labels["reference"])


def bench_xmem_preset(preset: str, args: argparse.Namespace, device: torch.device) -> tuple[float, float]:
    """(XMem engine fps, STCN engine fps) with the same preset sizes, best of the interleaved rounds."""
    models = {}
    for name in ("xmem", "stcn"):
        torch.manual_seed(args.seed)
        config = config_from_dict(ModelConfig, {"preset": preset, "name": name, "output_stride": args.output_stride})
        models[name] = build_network(config).to(device).eval()
    frames, mask = preset_video(preset, args, device)
    top_k = args.top_k or None  # STCN's; XMem reads its own
    for model in models.values():
        if args.warmup:
            engine_run(model, frames[: args.warmup], mask, device, top_k)
    best, _ = best_of_rounds({name: (lambda m=m: engine_run(m, frames, mask, device, top_k)) for name, m in models.items()},
                             args.rounds)
    return best["xmem"], best["stcn"]


def report_ratios(ratios: dict[str, float], device: torch.device, label: str) -> None:
    """Peak GPU memory (on CUDA), then the last line: the worst ratio over the presets, and each one."""
    if device.type == "cuda":
        print(f"peak GPU memory: {torch.cuda.max_memory_allocated(device) / 2**30:.2f} GiB")
    worst = min(ratios, key=ratios.get)
    detail = ", ".join(f"{p} {r:.2f}x" for p, r in ratios.items())
    print(f"{label}: {ratios[worst]:.2f}x (worst of: {detail})")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.against_official:
        return against_official.main(args)
    device = torch.device(args.device)
    presets = list(dict.fromkeys(p.strip() for p in args.presets.split(",") if p.strip()))
    where = describe(device)
    precision = "bf16 autocast" if uses_bf16(device, "auto") else "fp32"
    width = round(args.size * 16 / 9 / 2) * 2
    print(f"device={device} ({where}) torch {torch.__version__} {precision}; {width}x{args.size}, 1 object, "
          f"memory every 5 frames, top-k {'30 (xmem) / ' if args.model == 'xmem' else ''}{args.top_k or 'none'}"
          f"{' (stcn)' if args.model == 'xmem' else ''}; "
          f"best of {args.rounds} interleaved rounds")
    ratios = {}
    for preset in presets:
        frames = frame_count(preset, args, device)
        if args.model == "xmem":
            xmem_fps, stcn_fps = bench_xmem_preset(preset, args, device)
            ratios[preset] = xmem_fps / stcn_fps
            print(f"{preset:>6} ({frames} frames): xmem engine {xmem_fps:7.2f} frames/s | "
                  f"stcn engine {stcn_fps:7.2f} frames/s | ratio {ratios[preset]:.2f}x")
        else:
            engine_fps, reference_fps, agreement, iou = bench_preset(preset, args, device)
            ratios[preset] = engine_fps / reference_fps
            print(f"{preset:>6} ({frames} frames): engine {engine_fps:7.2f} frames/s | reference loop "
                  f"{reference_fps:7.2f} frames/s | ratio {ratios[preset]:.2f}x | labels agree on "
                  f"{100 * agreement:.2f}% of pixels, object IoU {iou:.3f}")
    report_ratios(ratios, device, "xmem vs stcn engine" if args.model == "xmem" else "engine vs reference loop")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
