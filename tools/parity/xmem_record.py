"""Record the XMem parity fixtures by running the official code (a clone of hkchengrex/XMem given on
the command line; nothing of it is copied here) on seeded random weights and a small synthetic video.

    python tools/parity/xmem_record.py --official /path/to/XMem [--seed 20]

Writes `tests/imports/fixtures/xmem/weights.json` (official key -> shape, dtype, the seed: the test
regenerates the weights with `xmem_fixture.generate_state`) and `outputs.npz`: the video (uint8), the
official network's stage outputs for frames 0-2 (`encode_key`, `encode_value` with deep update,
`read_memory` dense and top-k 30, `segment` with hidden update) and InferenceCore's probabilities
for every frame under the official evaluation defaults. Large maps are stored channel- or
pixel-subsampled in fp32 (see the `*_index` entries), so the file stays small (~250 kB).
"""

from __future__ import annotations

import argparse
import json
import sys
import types
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from xmem_fixture import OUTPUTS_NPZ, WEIGHTS_JSON, generate_state

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
SIZE, FRAMES, OBJECTS = 96, 12, 3
VALUE_CHANNELS = slice(0, None, 16)  # every 16th of the 512 value channels
HIDDEN_CHANNELS = slice(0, None, 4)  # every 4th of the 64 hidden channels
PIXELS = slice(1, None, 3)  # every 3rd pixel of frames 1-2's probabilities
VIDEO_PIXELS = slice(2, None, 8)  # every 8th pixel of the whole video's
OFFICIAL_EVAL = {  # eval.py's defaults
    "top_k": 30, "mem_every": 5, "deep_update_every": -1, "enable_long_term": True,
    "enable_long_term_count_usage": True, "num_prototypes": 128, "min_mid_term_frames": 5,
    "max_mid_term_frames": 10, "max_long_term_elements": 10000, "hidden_dim": 64,
}


def import_official(path: Path) -> types.ModuleType:
    """The official package on sys.path, with ImageNet weight downloads stubbed out (weights come from the seed)."""
    sys.path.insert(0, str(path))
    from model import resnet

    resnet.model_zoo = types.SimpleNamespace(load_url=lambda *a, **k: {})
    resnet.load_weights_add_extra_dim = lambda *a, **k: None
    from model import network

    return network


def synthetic_video(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """FRAMES x SIZE x SIZE x 3 uint8 frames and label maps (0 background, 1..OBJECTS) of moving textured ellipses."""
    g = torch.Generator().manual_seed(seed)
    background = F.interpolate(torch.rand(1, 3, 6, 6, generator=g), size=(SIZE, SIZE), mode="bilinear", align_corners=False)[0]
    yy, xx = torch.meshgrid(torch.arange(SIZE).float(), torch.arange(SIZE).float(), indexing="ij")
    start = torch.rand(OBJECTS, 2, generator=g) * SIZE * 0.6 + SIZE * 0.2
    speed = (torch.rand(OBJECTS, 2, generator=g) - 0.5) * 6
    radii = torch.rand(OBJECTS, 2, generator=g) * SIZE * 0.12 + SIZE * 0.1
    colours = torch.rand(OBJECTS, 3, generator=g)
    frames, labels = [], []
    for t in range(FRAMES):
        image = background.clone()
        label = torch.zeros(SIZE, SIZE, dtype=torch.uint8)
        for o in range(OBJECTS):
            cy, cx = start[o] + speed[o] * t
            inside = ((yy - cy) / radii[o, 0]) ** 2 + ((xx - cx) / radii[o, 1]) ** 2 <= 1
            stripes = 0.15 * torch.sin((xx + yy) / (3 + o))
            image[:, inside] = (colours[o][:, None] + stripes[inside][None]).clamp(0, 1)
            label[inside] = o + 1
        frames.append((image.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0))
        labels.append(label)
    return torch.stack(frames).numpy(), torch.stack(labels).numpy()


def one_hot(label: np.ndarray) -> torch.Tensor:
    """H x W labels -> OBJECTS x H x W float masks."""
    lab = torch.from_numpy(label).long()
    return torch.stack([(lab == o + 1).float() for o in range(OBJECTS)])


def record_stages(net, images: torch.Tensor, labels: np.ndarray) -> dict[str, np.ndarray]:
    """Frames 0-2 through the network's own methods: frame 0 from its mask, 1 and 2 read memory and decode."""
    out: dict[str, np.ndarray] = {}
    keys, shrinks, values = [], [], []
    x = (images - MEAN) / STD  # T, 3, H, W normalised as the official loader does
    key, shrinkage, selection, f16, f8, f4 = net.encode_key(x[0:1])
    hidden = torch.zeros(1, OBJECTS, 64, *key.shape[-2:])
    value, hidden = net.encode_value(x[0:1], f16, hidden, one_hot(labels[0])[None], is_deep_update=True)
    out.update(key_0=key, shrinkage_0=shrinkage, selection_0=selection,
               value_0=value[:, :, VALUE_CHANNELS], hidden_after_value_0=hidden[:, :, HIDDEN_CHANNELS])
    keys.append(key), shrinks.append(shrinkage), values.append(value)
    for t in (1, 2):
        key, shrinkage, selection, f16, f8, f4 = net.encode_key(x[t:t + 1])
        mk, ms, mv = torch.stack(keys, 2), torch.stack(shrinks, 2), torch.stack(values, 3)
        readout = net.read_memory(key, selection, mk, ms, mv)
        # the evaluation's read: the same similarity, softmax over the top 30 memory entries only
        from model.memory_util import do_softmax, get_similarity
        from model.memory_util import readout as read_values

        affinity = do_softmax(get_similarity(mk.flatten(2), ms.flatten(2), key.flatten(2), selection.flatten(2)), top_k=30)
        readout_top = read_values(affinity, mv.flatten(1, 2)).view_as(readout)
        hidden, _, prob = net.segment((f16, f8, f4), readout, hidden, h_out=True, strip_bg=False)
        value, hidden_deep = net.encode_value(x[t:t + 1], f16, hidden, prob[:, 1:], is_deep_update=True)
        out.update({
            f"readout_{t}": readout[:, :, VALUE_CHANNELS], f"readout_top30_{t}": readout_top[:, :, VALUE_CHANNELS],
            f"hidden_after_segment_{t}": hidden[:, :, HIDDEN_CHANNELS], f"prob_{t}": prob[..., PIXELS, PIXELS],
        })
        if t == 1:  # frame 2 checks the two-frame read and the decoder; its encoders repeat frame 1's
            out.update({f"key_{t}": key, f"shrinkage_{t}": shrinkage, f"selection_{t}": selection,
                        f"value_{t}": value[:, :, VALUE_CHANNELS], f"hidden_after_value_{t}": hidden_deep[:, :, HIDDEN_CHANNELS]})
        keys.append(key), shrinks.append(shrinkage), values.append(value)
        hidden = hidden_deep
    return {k: v.detach().float().numpy() for k, v in out.items()}


def record_video(net, images: torch.Tensor, labels: np.ndarray) -> np.ndarray:
    """InferenceCore over the whole video with eval.py's defaults: FRAMES x (1+OBJECTS) x h x w probabilities."""
    from inference.inference_core import InferenceCore

    core = InferenceCore(net, config=dict(OFFICIAL_EVAL))
    core.set_all_labels(list(range(1, OBJECTS + 1)))
    probs = []
    for t in range(images.shape[0]):
        image = (images[t] - MEAN) / STD
        mask = one_hot(labels[0]) if t == 0 else None
        prob = core.step(image, mask, valid_labels=list(range(1, OBJECTS + 1)) if t == 0 else None,
                         end=t == images.shape[0] - 1)
        probs.append(prob[:, VIDEO_PIXELS, VIDEO_PIXELS])
    return torch.stack(probs).detach().float().numpy()


def main() -> None:
    """Parse arguments, build the official network on seeded weights, write both fixture files."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official", type=Path, required=True, help="a clone of hkchengrex/XMem")
    parser.add_argument("--seed", type=int, default=20)
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    network = import_official(args.official.resolve())
    net = network.XMem({"key_dim": 64, "value_dim": 512, "hidden_dim": 64}).eval()
    entries = [(k, list(v.shape), "int64" if v.dtype == torch.long else "float32") for k, v in net.state_dict().items()]
    net.load_state_dict(generate_state(entries, args.seed), strict=True)
    WEIGHTS_JSON.parent.mkdir(parents=True, exist_ok=True)
    WEIGHTS_JSON.write_text(json.dumps({"seed": args.seed, "source": "hkchengrex/XMem model/network.py XMem({})",
                                        "entries": entries}, indent=0) + "\n")
    frames, labels = synthetic_video(args.seed)
    images = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255
    arrays = record_stages(net, images, labels)
    arrays["video_probs"] = record_video(net, images, labels)
    np.savez_compressed(OUTPUTS_NPZ, frames=frames, labels=labels, value_index=np.arange(512)[VALUE_CHANNELS],
                        hidden_index=np.arange(64)[HIDDEN_CHANNELS], pixel_index=np.arange(SIZE)[PIXELS],
                        video_pixel_index=np.arange(SIZE)[VIDEO_PIXELS], **arrays)
    params = sum(v.numel() for k, v in net.state_dict().items() if "running" not in k and "num_batches" not in k)
    print(f"official XMem: {params:,} parameters; wrote {WEIGHTS_JSON} and {OUTPUTS_NPZ} "
          f"({OUTPUTS_NPZ.stat().st_size / 1024:.0f} kB)")


if __name__ == "__main__":
    main()
