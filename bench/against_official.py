"""corrvos's engine against the official STCN / XMem / VOS_Correspondence evaluation loop: agreement and speed.

    python -m bench.inference --against-official /path/to/STCN                 # synthetic 480p, 3 objects
    python -m bench.inference --against-official /path/to/XMem --frames 60
    python -m bench.inference --against-official /path/to/STCN \\
        --frames-dir DAVIS/JPEGImages/480p/bear \\
        --first-mask DAVIS/Annotations/480p/bear/00000.png --objects 2 --cli   # a DAVIS download of yours

PATH is the user's clone of the official repository; it is imported at run time (with a stand-in for
torchvision's ResNet layout and `.cuda()` as a no-op) and nothing of it is copied into corrvos. The
official network gets seeded random weights in its own layout (or `--weights`, an official checkpoint
the user has; read weights-only), its evaluation loop propagates the video with its evaluation
defaults, and the same state dict goes through corrvos's importer into corrvos's engine with
`inference.preset: official` (and once more with corrvos's defaults, for the figure beside it).

Each run is a fresh process, so its peak resident memory is its own. Timing covers propagation only,
from frames in memory to every frame's probabilities at the frame's size, and is the best of
`--rounds`; the official side gets its frames already normalised into one video tensor (its data
loader's work, untimed), corrvos converts each uint8 frame inside the timed loop. Agreement is the
largest absolute difference of the probabilities (background and every object) over frames 1.. (frame
0 is the given mask on both sides) and the share of pixels whose labels agree. With `--cli` the
product's own commands also run, `corrvos import-weights` then `corrvos predict --set
inference.preset=official --save-probabilities`, and their float16 files are compared the same way.

With `--objects N` on a real clip, the first mask's foreground is cut into N vertical bands of equal
pixel count, each its own object: real frames, N objects to propagate. On CPUs the official loops
run in fp32, as both official evaluations do there.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

FORMATS = ("stcn", "xmem", "vos-correspondence")
MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
XMEM_EVAL = {  # XMem eval.py's defaults
    "top_k": 30, "mem_every": 5, "deep_update_every": -1, "enable_long_term": True,
    "enable_long_term_count_usage": True, "num_prototypes": 128, "min_mid_term_frames": 5,
    "max_mid_term_frames": 10, "max_long_term_elements": 10000, "hidden_dim": 64,
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of the against-official mode (`bench.inference --against-official PATH ...`)."""
    parser.add_argument("--format", choices=FORMATS, help="the official repository's kind (default: detected)")
    parser.add_argument("--weights", type=Path, help="an official checkpoint (default: seeded random weights "
                        "in the official layout)")
    parser.add_argument("--frames-dir", type=Path, help="a real clip: a folder of frames (default: synthetic)")
    parser.add_argument("--first-mask", type=Path, help="the real clip's first-frame mask PNG")
    parser.add_argument("--objects", type=int, default=3, help="objects to propagate (a real clip's foreground "
                        "is cut into this many vertical bands)")
    parser.add_argument("--cli", action="store_true", help="also run `corrvos import-weights` + `corrvos predict "
                        "--save-probabilities` and compare their float16 files")
    parser.add_argument("--no-defaults", action="store_true", help="skip the run with corrvos's default settings")
    parser.add_argument("--corrvos-only", action="store_true", help="run only corrvos (speed and peak memory on "
                        "long clips, where the official loop, which holds the whole video, would take too long)")
    parser.add_argument("--noise-floor", action="store_true", help="also run the official loop on one thread and "
                        "compare it with itself: how far float rounding alone moves its outputs on this clip")
    parser.add_argument("--keep", type=Path, help="keep the work folder (weights, probabilities) here")


# ----------------------------------------------------------------------------------------------- inputs


def detect_format(path: Path) -> str:
    """stcn / vos-correspondence (STCN's loop at the top level) or xmem (inference/inference_core.py)."""
    if (path / "inference" / "inference_core.py").is_file():
        return "xmem"
    if (path / "inference_core.py").is_file() and (path / "model" / "eval_network.py").is_file():
        source = (path / "model" / "eval_network.py").read_text(errors="replace")
        return "vos-correspondence" if "key_proj2" in source or (path / "davis2017").is_dir() else "stcn"
    raise SystemExit(f"--against-official {path}: neither an STCN-style nor an XMem-style clone "
                     "(no inference_core.py or inference/inference_core.py); name --format")


def split_into_bands(mask: np.ndarray, objects: int) -> np.ndarray:
    """A mask's foreground (any non-zero, non-void id) as `objects` vertical bands of equal pixel count, ids 1..N."""
    foreground = (mask > 0) & (mask != 255)
    columns = np.nonzero(foreground)[1]
    if columns.size < objects:
        raise SystemExit(f"--first-mask: {columns.size} foreground pixels cannot make {objects} objects")
    edges = np.quantile(columns, np.linspace(0, 1, objects + 1)[1:-1])
    bands = np.searchsorted(edges, np.arange(mask.shape[1]), side="right") + 1  # per column, 1..N
    return np.where(foreground, bands[None, :], 0).astype(np.uint8)


def synthetic_clip(frames: int, height: int, width: int, objects: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(T,H,W,3 uint8, first mask H,W with ids 1..N): textured ellipses drifting over a panning texture."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (height // 16 + frames + 2, width // 16 + frames + 2, 3)).astype(np.uint8)
    texture = np.repeat(np.repeat(coarse, 16, axis=0), 16, axis=1)
    yy, xx = np.mgrid[:height, :width]
    centres = rng.uniform(0.25, 0.75, (objects, 2)) * (height, width)
    speeds = rng.uniform(-1.5, 1.5, (objects, 2))
    radii = rng.uniform(0.08, 0.16, (objects, 2)) * (height, width)
    colours = rng.integers(0, 256, (objects, 3))
    video = np.empty((frames, height, width, 3), dtype=np.uint8)
    first = np.zeros((height, width), dtype=np.uint8)
    for t in range(frames):
        video[t] = texture[t: t + height, t: t + width]
        for o in range(objects):
            cy, cx = centres[o] + speeds[o] * t
            inside = ((yy - cy) / radii[o, 0]) ** 2 + ((xx - cx) / radii[o, 1]) ** 2 <= 1
            stripes = (40 * np.sin((xx + yy) / (4 + o)))[inside, None]
            video[t][inside] = np.clip(colours[o] + stripes, 0, 255).astype(np.uint8)
            if t == 0:
                first[inside] = o + 1
    return video, first


def load_clip(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray, str]:
    """(frames T,H,W,3, first mask with ids 1..N, a description) from the options."""
    if args.frames_dir is None:
        height = args.size
        width = round(height * 16 / 9 / 2) * 2 - 2  # 854 at 480: not a multiple of 16, as DAVIS's
        frames, mask = synthetic_clip(args.frames or 30, height, width, args.objects, args.seed)
        return frames, mask, f"synthetic {width}x{height}"
    from components.evaluation.masks import read_label_map
    from components.evaluation.videos import image_frames, list_image_files

    if args.first_mask is None:
        raise SystemExit("--frames-dir needs --first-mask")
    paths = list_image_files(args.frames_dir)[: args.frames or None]
    frames = np.stack(list(image_frames(paths)))
    mask = split_into_bands(read_label_map(args.first_mask), args.objects)
    if mask.shape != frames.shape[1:3]:
        raise SystemExit(f"--first-mask {args.first_mask}: {mask.shape[1]}x{mask.shape[0]}, the frames are "
                         f"{frames.shape[2]}x{frames.shape[1]}")
    return frames, mask, f"{args.frames_dir.name} {frames.shape[2]}x{frames.shape[1]}"


# ------------------------------------------------------------------------------------------ official side


def official_network(path: Path, format: str, weights: Path | None, seed: int) -> tuple[torch.nn.Module, dict]:
    """The official inference network from the clone at `path`, holding `weights` or seeded random ones."""
    from tools.parity.official_data import random_official_state, spec_of

    if format == "xmem":
        from tools.parity.xmem_record import import_official

        network = import_official(path).XMem({"key_dim": 64, "value_dim": 512, "hidden_dim": 64})
    else:
        from model.eval_network import STCN  # on sys.path inside `tools.parity.record.official_code`

        network = STCN()
    if weights is not None:
        from components.model.imports import strip_prefix, unwrap_checkpoint

        state = strip_prefix(unwrap_checkpoint(torch.load(weights, map_location="cpu", weights_only=True)))
    else:
        spec = {k: (list(v[0]), v[1]) for k, v in spec_of(network.state_dict())["keys"].items()}
        state = random_official_state(spec, seed)
    network.load_state_dict(state, strict=True)
    return network.eval(), state


def official_stcn_probabilities(network: torch.nn.Module, frames: np.ndarray, mask: np.ndarray
                                ) -> tuple[float, Iterator[np.ndarray]]:
    """(seconds, per-frame 1+O,H,W probabilities) of STCN's InferenceCore as eval_davis.py drives it."""
    from inference_core import InferenceCore
    from util.tensor_util import unpad

    ids = sorted(int(i) for i in np.unique(mask) if i)
    rgb = ((torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255 - MEAN) / STD)[None]  # the loader's work
    first = torch.stack([torch.from_numpy(mask == i).float() for i in ids])[:, None]  # O,1,H,W
    start = time.perf_counter()
    processor = InferenceCore(network, rgb, len(ids), top_k=20, mem_every=5)
    processor.interact(first, 0, rgb.shape[1])
    probabilities = [unpad(processor.prob[:, t], processor.pad)[:, 0] for t in range(rgb.shape[1])]
    seconds = time.perf_counter() - start
    return seconds, (p.numpy() for p in probabilities)


def official_xmem_probabilities(network: torch.nn.Module, frames: np.ndarray, mask: np.ndarray
                                ) -> tuple[float, Iterator[np.ndarray]]:
    """(seconds, per-frame 1+O,H,W probabilities) of XMem's InferenceCore as eval.py drives it."""
    from inference.inference_core import InferenceCore

    ids = sorted(int(i) for i in np.unique(mask) if i)
    images = [(torch.from_numpy(f).permute(2, 0, 1).float() / 255 - MEAN) / STD for f in frames]  # the loader's
    first = torch.stack([torch.from_numpy(mask == i).float() for i in ids])
    out = []
    start = time.perf_counter()
    core = InferenceCore(network, config=dict(XMEM_EVAL))
    core.set_all_labels(ids)
    for t, image in enumerate(images):
        prob = core.step(image, first if t == 0 else None, valid_labels=ids if t == 0 else None,
                         end=t == len(images) - 1)
        out.append(prob)
    seconds = time.perf_counter() - start
    return seconds, (p.numpy() for p in out)


# ------------------------------------------------------------------------------------------------ workers


@dataclass(frozen=True)
class Job:
    side: str  # "official", "official-1-thread", "corrvos-official" or "corrvos-defaults"
    format: str
    official_path: Path
    work: Path  # holds clip.npz and official.pth; the run writes <work>/<side>/<frame>.npy
    seed: int
    threads: int


@dataclass(frozen=True)
class Outcome:
    seconds: float
    frames: int
    peak_rss_gib: float  # the process's peak resident memory
    before_gib: float  # its resident memory with the model and the video loaded, before propagating


def rss_gib() -> float:
    """The process's resident memory now (GiB)."""
    with open("/proc/self/statm") as stream:
        return int(stream.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**30


def run_job(job: Job) -> Outcome:
    """One side's propagation in this (fresh) process; probabilities go to <work>/<side>/NNNNN.npy (float32)."""
    torch.set_num_threads(job.threads)
    torch.set_grad_enabled(False)
    with np.load(job.work / "clip.npz") as clip:
        frames, mask = clip["frames"], clip["mask"]
    out = job.work / job.side
    out.mkdir(exist_ok=True)
    if job.side.startswith("official"):
        from tools.parity.record import official_code

        with official_code(job.official_path):
            network, _ = official_network(job.official_path, job.format, job.work / "official.pth", job.seed)
            before = rss_gib()
            run = official_xmem_probabilities if job.format == "xmem" else official_stcn_probabilities
            seconds, probabilities = run(network, frames, mask)
            for t, p in enumerate(probabilities):
                np.save(out / f"{t:05d}.npy", p.astype(np.float32))
    else:
        seconds, before = corrvos_run(job, frames, mask, out)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # kB on Linux
    return Outcome(seconds, len(frames), peak, before)


def corrvos_run(job: Job, frames: np.ndarray, mask: np.ndarray, out: Path) -> tuple[float, float]:
    """Import the official state dict and propagate with the official preset or corrvos's defaults:
    (propagation seconds, resident GiB before it). Writing the files is not timed."""
    from components.config import InferenceConfig, ModelConfig, config_from_dict
    from components.inference import propagator_for
    from components.model.factory import build_network
    from components.model.imports import import_checkpoint

    imported = import_checkpoint(torch.load(job.work / "official.pth", map_location="cpu", weights_only=True),
                                 job.format)
    model = build_network(config_from_dict(ModelConfig, imported.model_config)).eval()
    model.load_state_dict(imported.state_dict, strict=True)
    preset = {"preset": "official"} if job.side == "corrvos-official" else {"precision": "fp32"}
    propagator = propagator_for(model, config_from_dict(InferenceConfig, preset, "inference"), "cpu")
    before, seconds = rss_gib(), 0.0
    start = time.perf_counter()
    for frame in propagator.iter_probabilities(list(frames), {0: mask}):
        seconds += time.perf_counter() - start
        np.save(out / f"{frame.index:05d}.npy", frame.probabilities)
        start = time.perf_counter()
    return seconds, before


def in_fresh_process(job: Job) -> Outcome:
    """`run_job` in a spawned process (its own peak memory, its own imports of the official code)."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(run_job, job).result()


# ---------------------------------------------------------------------------------------------- compare


@dataclass(frozen=True)
class Agreement:
    max_abs: float  # largest |p - p_official| over frames 1.., every channel and pixel
    label_share: float  # share of pixels of frames 1.. whose arg-max label agrees
    by_frame: tuple[float, ...] = ()  # each frame's largest difference, frames 1..

    def growth(self) -> str:
        """The largest difference over the first and the last ten compared frames (drift shows as growth)."""
        head, tail = self.by_frame[:10], self.by_frame[-10:]
        return f"{max(head, default=0):.1e} in frames 1-{len(head)}, {max(tail, default=0):.1e} in the last {len(tail)}"


def compare(ours: Iterator[np.ndarray], official: Iterator[np.ndarray]) -> Agreement:
    """Agreement of two streams of 1+O,H,W probabilities (frame 0, the given mask, skipped)."""
    by_frame, same, total = [], 0, 0
    for t, (a, b) in enumerate(zip(ours, official, strict=True)):
        if t == 0:
            continue
        a, b = a.astype(np.float32), b.astype(np.float32)
        if a.shape != b.shape:
            raise SystemExit(f"frame {t}: corrvos gives {a.shape}, the official loop {b.shape}")
        by_frame.append(float(np.abs(a - b).max()))
        same += int((a.argmax(0) == b.argmax(0)).sum())
        total += a[0].size
    return Agreement(max(by_frame, default=0.0), same / total if total else float("nan"), tuple(by_frame))


def stream(folder: Path) -> Iterator[np.ndarray]:
    """The .npy files of `folder`, in name order."""
    return (np.load(path) for path in sorted(folder.glob("*.npy")))


def cli_probabilities(work: Path, format: str, frames: np.ndarray, mask: np.ndarray) -> Path:
    """`corrvos import-weights` then `corrvos predict --set inference.preset=official --save-probabilities`
    on the clip written as PNG frames; returns the folder of float16 .npy files."""
    import cv2
    from PIL import Image

    clip = work / "cli" / "frames"
    clip.mkdir(parents=True)
    for t, frame in enumerate(frames):
        cv2.imwrite(str(clip / f"{t:05d}.png"), frame[:, :, ::-1])  # lossless: the same pixels as the runs above
    first = Image.fromarray(mask, mode="P")
    first.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0, 128, 128, 0, 0, 0, 128] + [255] * (768 - 15))
    first.save(work / "cli" / "00000.png")
    corrvos = [sys.executable, "-m", "pipelines.cli"]
    model, probabilities = work / "cli" / "model.pt", work / "cli" / "probabilities"
    for command in (
        [*corrvos, "import-weights", str(work / "official.pth"), "--format", format, "--out", str(model)],
        [*corrvos, "predict", "--model", str(model), "--frames", str(clip), "--masks", str(work / "cli" / "00000.png"),
         "--out", str(work / "cli" / "predicted"), "--set", "inference.preset=official", "--device", "cpu",
         "--save-probabilities", str(probabilities), "--no-progress"],
    ):
        print("$ corrvos " + " ".join(command[3:]), flush=True)
        subprocess.run(command, check=True, timeout=3600, cwd=Path(__file__).resolve().parents[1])
    return probabilities


# -------------------------------------------------------------------------------------------------- main


def save_inputs(args: argparse.Namespace, format: str, work: Path) -> tuple[np.ndarray, np.ndarray, str]:
    """Write the clip and the official-layout weights the workers share; returns (frames, mask, description)."""
    from tools.parity.record import official_code

    frames, mask, description = load_clip(args)
    np.savez(work / "clip.npz", frames=frames, mask=mask)
    with official_code(args.against_official):
        _, state = official_network(args.against_official, format, args.weights, args.seed)
    torch.save(state, work / "official.pth")
    return frames, mask, description


def main(args: argparse.Namespace) -> int:
    """Run the official loop and corrvos on one clip; print agreement, speed and peak memory."""
    path = args.against_official.resolve()
    args.against_official = path
    format = args.format or detect_format(path)
    threads = torch.get_num_threads()
    with tempfile.TemporaryDirectory(prefix="corrvos-vs-official-") as scratch:
        work = args.keep.resolve() if args.keep else Path(scratch)
        work.mkdir(parents=True, exist_ok=True)
        frames, mask, description = save_inputs(args, format, work)
        objects = len([i for i in np.unique(mask) if i])
        print(f"official {format} ({path}) vs corrvos; CPU fp32, {threads} threads; {description}, "
              f"{len(frames)} frames, {objects} objects; weights: {args.weights or f'seeded random (seed {args.seed})'}; "
              f"best of {args.rounds} round(s), each run in a fresh process", flush=True)
        sides = ([] if args.corrvos_only else ["official"]) + ["corrvos-official"] + \
            ([] if args.no_defaults else ["corrvos-defaults"])
        best: dict[str, Outcome] = {}
        for round_index in range(args.rounds):
            for side in (sides if round_index % 2 == 0 else sides[::-1]):
                outcome = in_fresh_process(Job(side, format, path, work, args.seed, threads))
                if side not in best or outcome.seconds < best[side].seconds:
                    best[side] = outcome
        if args.noise_floor and not args.corrvos_only:
            in_fresh_process(Job("official-1-thread", format, path, work, args.seed, 1))
            floor = compare(stream(work / "official-1-thread"), stream(work / "official"))
            print(f"official loop, 1 thread vs {threads}: max |p - p| {floor.max_abs:.1e} ({floor.growth()})")
        official = best.get("official")
        for side in sides:
            outcome = best[side]
            fps = outcome.frames / outcome.seconds
            line = (f"{side:>17}: {fps:6.3f} frames/s, peak RSS {outcome.peak_rss_gib:5.2f} GiB "
                    f"({outcome.peak_rss_gib - outcome.before_gib:+.2f} while propagating)")
            if side != "official" and official is not None:
                agreement = compare(stream(work / side), stream(work / "official"))
                line += (f" | x{official.seconds / outcome.seconds:.2f} the official loop | max |p - p_official| "
                         f"{agreement.max_abs:.1e} ({agreement.growth()}), labels agree on "
                         f"{100 * agreement.label_share:.3f}% of pixels")
            print(line, flush=True)
        if args.cli:
            files = cli_probabilities(work, format, frames, mask)
            agreement = compare(stream(files), stream(work / "official"))
            print(f"corrvos import-weights + predict --set inference.preset=official (float16 files): max |p - "
                  f"p_official| {agreement.max_abs:.1e} ({agreement.growth()}), labels agree on "
                  f"{100 * agreement.label_share:.3f}% of pixels")
        if official is not None:
            print(f"corrvos (official preset) vs official {format} loop: "
                  f"{official.seconds / best['corrvos-official'].seconds:.2f}x")
    return 0
