"""Record a parity fixture by running the OFFICIAL code (a clone given on the command line) on seeded weights.

    python -m tools.parity.record --format stcn --official /path/to/STCN --out tests/imports/fixtures/stcn
    python -m tools.parity.record --format vos-correspondence --official /path/to/VOS_Correspondence \
        --out tests/imports/fixtures/vos_correspondence

The official inference network (`model/eval_network.py`) is built, its state dict's keys and shapes
are written to `spec.json`, seeded random weights (tools/parity/official_data.py) are loaded into it
strictly, and the official `InferenceCore` propagates a synthetic video; its probabilities (and the
first frame's key and value, for stage-by-stage checks) go to `official.npz`. Nothing of the official
code is copied: it is imported from the given path at run time. torchvision, which it needs only for
the ResNet-50 layout, is replaced by a minimal stand-in (no downloads), and `.cuda()` is a no-op.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
import torch.utils.model_zoo

from tools.parity.official_data import random_official_state, spec_of, synthetic_video

STRIDE = 3  # stored pixels: every third row and column (float32), enough to see every bilinear phase

TORCHVISION_STANDIN = '''
"""A stand-in for torchvision's ResNet-50 (parameter layout only; `pretrained` is ignored, nothing downloads)."""
import torch.nn as nn


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    def __init__(self, layers):
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = self._make_layer(64, layers[0])
        self.layer2 = self._make_layer(128, layers[1], 2)
        self.layer3 = self._make_layer(256, layers[2], 2)
        self.layer4 = self._make_layer(512, layers[3], 2)
        self.fc = nn.Linear(2048, 1000)

    def _make_layer(self, planes, blocks, stride=1):
        downsample = None
        if stride != 1 or self.inplanes != planes * 4:
            downsample = nn.Sequential(nn.Conv2d(self.inplanes, planes * 4, 1, stride=stride, bias=False),
                                       nn.BatchNorm2d(planes * 4))
        layers = [Bottleneck(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * 4
        layers += [Bottleneck(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)


def resnet50(pretrained=False, **kwargs):
    return ResNet([3, 4, 6, 3])
'''


@contextmanager
def official_code(path: Path) -> Iterator[None]:
    """Make the official repository importable on a CPU without torchvision or network access."""
    with tempfile.TemporaryDirectory(prefix="parity-torchvision-") as stub:
        models = Path(stub, "torchvision", "models")
        models.mkdir(parents=True)
        Path(stub, "torchvision", "__init__.py").write_text("from torchvision import models\n")
        Path(models, "__init__.py").write_text("from torchvision.models.resnet import resnet50\n")
        Path(models, "resnet.py").write_text(TORCHVISION_STANDIN)
        sys.path[:0] = [str(path), stub]
        original_cuda, original_load_url, original_zeros = torch.Tensor.cuda, torch.utils.model_zoo.load_url, torch.zeros
        torch.Tensor.cuda = lambda self, *args, **kwargs: self
        torch.utils.model_zoo.load_url = lambda *args, **kwargs: {}  # ImageNet weights: replaced by seeded ones anyway

        def zeros_on_cpu(*args, **kwargs):
            kwargs.pop("device", None)
            return original_zeros(*args, **kwargs)

        torch.zeros = zeros_on_cpu  # InferenceCore allocates its probabilities on 'cuda'
        try:
            yield
        finally:
            torch.Tensor.cuda, torch.utils.model_zoo.load_url, torch.zeros = original_cuda, original_load_url, original_zeros
            sys.path[:] = [p for p in sys.path if p not in (str(path), stub)]


def record(official: Path, out: Path, seed: int, size: int, frames: int, top_k: int, mem_every: int,
           commit: str | None = None) -> dict:
    """Run the official propagation on seeded weights; write spec.json and official.npz to `out`."""
    torch.manual_seed(seed)
    with official_code(official), torch.no_grad():
        from inference_core import InferenceCore
        from model.eval_network import STCN

        network = STCN().eval()
        spec = spec_of(network.state_dict())
        network.load_state_dict(random_official_state({k: tuple(v) for k, v in spec["keys"].items()}, seed), strict=True)
        video, first_mask = synthetic_video(seed, frames, size, size)
        mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 1, 3, 1, 1)
        std = torch.tensor([0.229, 0.224, 0.225]).view(1, 1, 3, 1, 1)
        rgb = (torch.from_numpy(video).permute(0, 3, 1, 2)[None].float() / 255 - mean) / std  # 1,T,3,H,W
        ids = [1, 2]
        masks = torch.stack([torch.from_numpy(first_mask == i).float() for i in ids])[:, None]  # O,1,H,W
        captured: dict[str, torch.Tensor] = {}
        encode_value = network.encode_value

        def capture_value(frame, kf16, mask):
            value = encode_value(frame, kf16, mask)
            captured.setdefault("value0", value.clone())
            return value

        network.encode_value = capture_value
        processor = InferenceCore(network, rgb, len(ids), top_k=top_k, mem_every=mem_every)
        processor.interact(masks, 0, frames)
        key0 = network.encode_key(rgb[:, 0])[0]
        probs = processor.prob[:, :, 0].numpy()  # O+1, T, H, W
    np.savez_compressed(
        out / "official.npz",
        probs=probs[1:, 1:, ::STRIDE, ::STRIDE].astype(np.float32),  # objects, frames 1.., every third pixel
        key0=key0[0].numpy().astype(np.float32),  # Ck,h,w
        value0=captured["value0"][:, :16, 0].numpy().astype(np.float32),  # O,16,h,w (first 16 channels)
    )
    commit = commit or official_commit(official)
    settings = {"seed": seed, "size": size, "frames": frames, "top_k": top_k, "mem_every": mem_every,
                "stride": STRIDE, "object_ids": ids, "official_commit": commit,
                "parameters": sum(int(np.prod(v[0])) for k, v in spec["keys"].items() if "running" not in k
                                  and "num_batches" not in k)}
    (out / "spec.json").write_text(json.dumps({**settings, **spec}, separators=(",", ":")) + "\n")
    return settings


def official_commit(path: Path) -> str:
    """The clone's HEAD commit, or 'unknown' when it is not a git clone (an archive)."""
    try:
        return subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--format", required=True, choices=["stcn", "vos-correspondence"])
    parser.add_argument("--official", required=True, type=Path, help="a clone of the official repository")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--seed", type=int, default=20)
    parser.add_argument("--size", type=int, default=96, help="frame side, a multiple of 16 (no padding)")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--commit", help="the official commit, when PATH is not a git clone (an archive)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    settings = record(args.official.resolve(), args.out, args.seed, args.size, args.frames, top_k=20, mem_every=5,
                      commit=args.commit)
    print(json.dumps(settings))


if __name__ == "__main__":
    main()
