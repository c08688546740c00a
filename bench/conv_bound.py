"""Can the decoder's 3x3 convolutions get cheaper at fp32? Direct oneDNN against Winograd F(2x2, 3x3).

    python -m bench.conv_bound              # the decoder's per-object ResBlock convolutions at 480p, 3 objects

Both inference loops spend most of a 3-object 480p frame in the decoder's per-object 3x3 convolutions
(docs/results.md, "Speed against the official loops"). The one exact rewrite with fewer multiplications
is Winograd's: F(2x2, 3x3) does 16 channel products per 2x2 output tile where a direct convolution does
36 (2.25x fewer), at the price of tile transforms. This bench times, per layer shape, PyTorch's direct
convolution, the Winograd product step alone (as 16 GEMMs with `torch.bmm`, and as one 16-group 1x1
convolution in channels-last, the fastest form found here) and the whole Winograd convolution with its
transforms written as strided slices, checks the Winograd result against the direct one, and prints
the ratio direct / Winograd. A ratio below 1 means Winograd in PyTorch ops loses on this machine.
"""

from __future__ import annotations

import argparse
import time
from typing import Callable

import torch
import torch.nn.functional as F

from bench.device import describe

# the decoder's per-object ResBlock convolutions at 480p (stride 8: 60x107, stride 4: 120x214)
SHAPES = ((512, 256, 60, 107), (256, 256, 60, 107), (256, 256, 120, 214))
_G = torch.tensor([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])


def winograd_filter(weight: torch.Tensor) -> torch.Tensor:
    """G w G^T per (out, in) pair, laid out as 16 groups of (out, in) for the grouped 1x1 convolution."""
    transformed = _G @ weight @ _G.T  # out, in, 4, 4
    out_channels, in_channels = weight.shape[:2]
    return transformed.permute(2, 3, 0, 1).reshape(16 * out_channels, in_channels, 1, 1)


def _input_rows(x: torch.Tensor, tiles: int, dim: int) -> list[torch.Tensor]:
    """B^T d along `dim` for every tile at once: rows d0-d2, d1+d2, d2-d1, d1-d3 of each 4-wide window."""
    def window(k: int) -> torch.Tensor:
        return x[(slice(None),) * dim + (slice(k, k + 2 * tiles - 1, 2),)]

    d0, d1, d2, d3 = window(0), window(1), window(2), window(3)
    return [d0 - d2, d1 + d2, d2 - d1, d1 - d3]


def winograd_conv(x: torch.Tensor, filters: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """A 3x3, stride-1, padding-1 convolution of x (N,C,H,W) by Winograd F(2x2, 3x3)."""
    n, channels, height, width = x.shape
    out_channels = filters.shape[0] // 16
    tiles_h, tiles_w = (height + 1) // 2, (width + 1) // 2
    padded = F.pad(x, (1, 1 + 2 * tiles_w - width, 1, 1 + 2 * tiles_h - height))
    parts = [column for row in _input_rows(padded, tiles_h, 2) for column in _input_rows(row, tiles_w, 3)]
    stacked = torch.cat(parts, dim=1).contiguous(memory_format=torch.channels_last)  # N, 16*C, th, tw
    products = F.conv2d(stacked, filters, groups=16).view(n, 4, 4, out_channels, tiles_h, tiles_w)
    rows = (products[:, 0] + products[:, 1] + products[:, 2], products[:, 1] - products[:, 2] - products[:, 3])
    out = x.new_empty(n, out_channels, 2 * tiles_h, 2 * tiles_w)
    for r, row in enumerate(rows):  # A^T m A: the same sums along the columns
        out[:, :, r::2, 0::2] = row[:, 0] + row[:, 1] + row[:, 2]
        out[:, :, r::2, 1::2] = row[:, 1] - row[:, 2] - row[:, 3]
    return out[:, :, :height, :width] + bias.view(1, -1, 1, 1)


def best_seconds(fn: Callable[[], object], rounds: int) -> float:
    fn()
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, default=3, help="batch: one map per object (default 3)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    print(f"device: {describe(torch.device('cpu'))}, fp32")
    print("layer (in->out @ HxW) | direct s (GFLOP/s) | winograd GEMM: bmm s, grouped 1x1 s | winograd total s | "
          "max rel err | direct/winograd")
    worst = float("inf")
    with torch.inference_mode():
        for in_channels, out_channels, height, width in SHAPES:
            x = torch.randn(args.objects, in_channels, height, width).contiguous(memory_format=torch.channels_last)
            weight = (torch.randn(out_channels, in_channels, 3, 3) * 0.02).contiguous(memory_format=torch.channels_last)
            bias = torch.randn(out_channels)
            filters = winograd_filter(weight).contiguous(memory_format=torch.channels_last)
            tiles = args.objects * ((height + 1) // 2) * ((width + 1) // 2)
            as_bmm = (torch.randn(16, tiles, in_channels), torch.randn(16, in_channels, out_channels))
            as_grouped = torch.randn(args.objects, 16 * in_channels, (height + 1) // 2, (width + 1) // 2) \
                .contiguous(memory_format=torch.channels_last)
            direct = best_seconds(lambda: F.conv2d(x, weight, bias, padding=1), args.rounds)
            gemm_bmm = best_seconds(lambda: torch.bmm(*as_bmm), args.rounds)
            gemm_grouped = best_seconds(lambda: F.conv2d(as_grouped, filters, groups=16), args.rounds)
            total = best_seconds(lambda: winograd_conv(x, filters, bias), args.rounds)
            want = F.conv2d(x, weight, bias, padding=1)
            error = ((winograd_conv(x, filters, bias) - want).abs().max() / want.abs().max()).item()
            gflop = 2 * args.objects * height * width * in_channels * out_channels * 9 / 1e9
            ratio = direct / total
            worst = min(worst, ratio)
            print(f"{in_channels}->{out_channels} @ {height}x{width} | {direct:.4g} ({gflop / direct:.0f}) | "
                  f"{gemm_bmm:.4g}, {gemm_grouped:.4g} | {total:.4g} | {error:.1e} | {ratio:.2f}x")
    print(f"direct / winograd, worst layer: {worst:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
