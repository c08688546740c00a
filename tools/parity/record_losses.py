"""Record the loss parity fixture by running the OFFICIAL loss code on the inputs of tests/losses/official_inputs.py.

    python -m tools.parity.record_losses --vos-correspondence /path/to/VOS_Correspondence \
        --stcn /path/to/STCN --xmem /path/to/XMem --out tests/losses/fixtures/official_losses.npz

Each path is a clone or an unpacked archive (`git archive HEAD | tar -x -C DIR`); nothing of it is copied
into corrvos: its modules are imported from the path at run time, with stand-ins for the imports the loss
code does not use (the network, the image saver). What is recorded, per case: the released `stloss`
(`_cluster_grid` + `_ce_loss`) and `cvloss` (`_ref_loss`) with the grid indices they sampled and their
gradients; the released, STCN and XMem `LossComputer.compute` totals with their gradients; and the
released correspondence factor and bootstrap fraction at a list of iterations.
"""

from __future__ import annotations

import argparse
import json
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tools.parity.record import official_commit as _commit
from tests.losses.official_inputs import (
    CORR_SCALES,
    CORR_T,
    SCHEDULE_ITERATIONS,
    SEG_ITERATIONS,
    STCN_OBJECTS,
    XMEM_OBJECTS,
    correspondence_keys,
    segmentation_case,
    view_theta,
)

OWN_PACKAGES = ("model", "util")  # every official repository has these top-level packages


@contextmanager
def official_modules(path: Path, stubs: dict[str, dict[str, Any]]) -> Iterator[None]:
    """Import from `path` with `stubs` (module name -> attributes) in place; forget its modules afterwards."""
    def forget() -> None:
        for name in [n for n in sys.modules if n.split(".")[0] in OWN_PACKAGES]:
            del sys.modules[name]

    forget()
    for name, attributes in stubs.items():
        module = types.ModuleType(name)
        module.__dict__.update(attributes)
        sys.modules[name] = module
    sys.path.insert(0, str(path))
    try:
        yield
    finally:
        sys.path.remove(str(path))
        forget()


def record_correspondence(vosc: Path, out: dict[str, np.ndarray]) -> dict[str, Any]:
    """Released stloss / cvloss on seeded keys at each scale; returns diagnostics per scale."""
    notes: dict[str, Any] = {}
    with official_modules(vosc, {"model.network": {"STCN": None}, "util.image_saver": {"pool_pairs": None}}):
        from model.model import STCNModel

        for scale in CORR_SCALES:
            tag = f"corr_{scale:g}"
            model = STCNModel.__new__(STCNModel)  # only the loss methods are used: no network, no GPU
            model.para, model.GRID_SIZE, model.GRID_SIZE_REF, model.eye = {"amp": False}, 8, 4, None
            sampled = _record_sampling(model)
            keys_a, keys_b = correspondence_keys(scale)
            b, t = keys_a.shape[:2]
            key1 = keys_a.flatten(0, 1).clone().requires_grad_(True)  # B*T: view 1, with gradient
            key2_first = keys_b[:, 0].clone().requires_grad_(True)  # view 2 frame 0, with gradient
            key2 = torch.cat([key2_first[:, None], keys_b[:, 1:]], dim=1).flatten(0, 1)  # frames >= 1: no gradient
            aff1 = view_theta().repeat_interleave(t, dim=0)  # view 1 -> view 2's grid (`view2_inv_aff`)
            aff2 = torch.eye(2, 3)[None].repeat(b * t, 1, 1)  # view 2 stays put (`view1_aff` is the identity)
            torch.manual_seed(0)
            vals, pseudo, anchors = model._cluster_grid(key1, key2, aff1, aff2, CORR_T)
            _, stloss, _ = model._ce_loss(vals, pseudo, CORR_T)
            cvloss = model._ref_loss(model._align(key1, aff1)[::t], model._align(key2, aff2)[::t], N=4)
            (grad_st,) = torch.autograd.grad(stloss, [key1])
            grad_cv_a, grad_cv_b = torch.autograd.grad(cvloss, [key1, key2_first])
            out[f"{tag}_pcl"] = np.float32(stloss.item())
            out[f"{tag}_cross_view"] = np.float32(cvloss.item())
            out[f"{tag}_pcl_grad_a"] = grad_st.view_as(keys_a).numpy()
            out[f"{tag}_cross_view_grad_a0"] = grad_cv_a.view_as(keys_a)[:, 0].numpy()
            out[f"{tag}_cross_view_grad_b0"] = grad_cv_b.numpy()
            out[f"{tag}_anchors"] = anchors.view(b, -1).numpy().astype(np.int16)
            out[f"{tag}_points"] = sampled[-1].view(b, -1).numpy().astype(np.int16)
            labels = pseudo.view(b, t, *pseudo.shape[1:])[:, 1:]  # B, T-1, H, W
            out[f"{tag}_pseudo"] = labels.numpy().astype(np.int16)
            per_clip = anchors.view(b, -1).shape[1]
            other = labels // per_clip != torch.arange(b)[:, None, None, None]
            probs = torch.softmax(vals.detach(), dim=1).view(b, t, -1, *vals.shape[2:])[:, 1:]
            target_p = probs.gather(2, labels[:, :, None]).squeeze(2)
            notes[tag] = {"pcl": stloss.item(), "cross_view": cvloss.item(),
                          "pseudo_from_other_clip": float(other.float().mean()),
                          "target_below_1e-8": float((target_p < 1e-8).float().mean())}
    return notes


def _record_sampling(model: Any) -> list[torch.Tensor]:
    """Wrap the official `_sample_index` of `model` so every grid index it draws is kept, in order."""
    sampled: list[torch.Tensor] = []
    sample_index = model._sample_index

    def recording(x: torch.Tensor, T: int, N: int) -> torch.Tensor:
        sampled.append(sample_index(x, T, N))
        return sampled[-1]

    model._sample_index = recording
    return sampled


def _stcn_data(logits: torch.Tensor, labels: torch.Tensor, objects: tuple[int, ...]) -> dict[str, torch.Tensor]:
    """The `data` dict STCN-style LossComputers read (first/second object masks, class labels, selector)."""
    t = labels.shape[1]
    data: dict[str, torch.Tensor] = {
        "gt": (labels == 1).float()[:, :, None], "sec_gt": (labels == 2).float()[:, :, None], "cls_gt": labels,
        "selector": torch.tensor([[1.0, 1.0 if n > 1 else 0.0] for n in objects]),
    }
    for i in range(1, t):
        data[f"logits_{i}"] = logits[:, i - 1]
        probs = torch.softmax(logits[:, i - 1].detach(), dim=1)
        data[f"mask_{i}"], data[f"sec_mask_{i}"] = probs[:, 1:2], probs[:, 2:3]
    return data


def record_segmentation(vosc: Path, stcn: Path, xmem: Path, out: dict[str, np.ndarray]) -> None:
    """Released (0.4 Dice), STCN (no Dice) and XMem (Dice) segmentation totals and their logit gradients."""
    zero = torch.tensor(0.0)
    for name, path in (("released", vosc), ("stcn", stcn)):
        with official_modules(path, {}):
            from model.losses import LossComputer

            computer = LossComputer({})
            for it in SEG_ITERATIONS:
                logits, labels = segmentation_case(STCN_OBJECTS, 2, seed=it)
                logits.requires_grad_(True)
                losses = computer.compute({**_stcn_data(logits, labels, STCN_OBJECTS), "cross_key": zero,
                                           "temp": zero}, it)
                (grad,) = torch.autograd.grad(losses["total_loss"], [logits])
                out[f"seg_{name}_{it}"] = np.float32(losses["total_loss"].item())
                out[f"seg_{name}_{it}_grad"] = grad.numpy()
                out[f"seg_{name}_{it}_p"] = np.float64(losses["p"])
    with official_modules(xmem, {}):
        from model.losses import LossComputer

        computer = LossComputer({"start_warm": 20_000, "end_warm": 70_000})
        for it in SEG_ITERATIONS:
            logits, labels = segmentation_case(XMEM_OBJECTS, 3, seed=it + 1)
            logits.requires_grad_(True)
            b, t = labels.shape[:2]
            data: dict[str, torch.Tensor] = {"rgb": torch.zeros(b, t, 1, 1, 1), "cls_gt": labels[:, :, None]}
            for i in range(1, t):
                data[f"logits_{i}"] = logits[:, i - 1]
                data[f"masks_{i}"] = torch.softmax(logits[:, i - 1], dim=1)[:, 1:]  # XMem's aggregated object probs
            losses = computer.compute(data, list(XMEM_OBJECTS), it)
            (grad,) = torch.autograd.grad(losses["total_loss"], [logits])
            out[f"seg_xmem_{it}"] = np.float32(losses["total_loss"].item())
            out[f"seg_xmem_{it}_grad"] = grad.numpy()


def record_schedules(vosc: Path, out: dict[str, np.ndarray]) -> None:
    """The released correspondence factor and bootstrap fraction at each iteration (fp64, from `compute`)."""
    factors, fractions = [], []
    with official_modules(vosc, {}):
        from model.losses import LossComputer

        computer = LossComputer({})
        logits, labels = segmentation_case(STCN_OBJECTS, 2, seed=0)
        data = _stcn_data(logits.double(), labels, STCN_OBJECTS)
        big = torch.tensor(1e6, dtype=torch.float64)
        for it in SCHEDULE_ITERATIONS:
            without = computer.compute({**data, "cross_key": big * 0, "temp": big * 0}, it)
            with_terms = computer.compute({**data, "cross_key": big, "temp": big}, it)
            factors.append(float((with_terms["total_loss"] - without["total_loss"]) / (0.24 * big)))
            fractions.append(float(without["p"]))
    out["schedule_iterations"] = np.array(SCHEDULE_ITERATIONS, dtype=np.int64)
    out["schedule_factor"] = np.array(factors)
    out["schedule_bootstrap_p"] = np.array(fractions)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vos-correspondence", required=True, type=Path)
    parser.add_argument("--stcn", required=True, type=Path)
    parser.add_argument("--xmem", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--commits", help="JSON {vos_correspondence, stcn, xmem} when the paths are archives")
    args = parser.parse_args()
    torch.set_num_threads(1)
    out: dict[str, np.ndarray] = {}
    notes = record_correspondence(args.vos_correspondence.resolve(), out)
    record_segmentation(args.vos_correspondence.resolve(), args.stcn.resolve(), args.xmem.resolve(), out)
    record_schedules(args.vos_correspondence.resolve(), out)
    commits = json.loads(args.commits) if args.commits else {
        "vos_correspondence": _commit(args.vos_correspondence), "stcn": _commit(args.stcn), "xmem": _commit(args.xmem)}
    out["meta"] = np.array(json.dumps({"commits": commits, "torch": torch.__version__, "notes": notes}))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **out)
    print(json.dumps({"commits": commits, "notes": notes}, indent=1))


if __name__ == "__main__":
    main()
