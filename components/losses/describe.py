"""The resolved training objective of a config in words, per stage (`corrvos objective CONFIG`).

Shows what a run will optimise before it starts: the terms and weights, the loss forms, both loss
schedules and the learning-rate drops in each stage's own iterations, whichever unit the config states them in.
"""

from __future__ import annotations

from components.config.schema import LossConfig, StageConfig


def stage_iteration(loss: LossConfig, value: float, iterations: int) -> int:
    """A schedule point of `loss` as an iteration of a stage of `iterations` iterations."""
    return round(value * iterations) if loss.schedule_unit == "fraction" else int(value)


def describe_objective(loss: LossConfig, stages: dict[str, StageConfig]) -> list[str]:
    """Lines naming every term, form and schedule of `loss`, the schedules resolved for each stage."""
    scope = "per clip, own classes" if loss.bootstrap_scope == "clip" else "per batch, every class slot"
    seg = f"{loss.seg_weight:g} x bootstrapped CE ({scope}, top {loss.bootstrap_top_p:.0%})"
    if loss.dice_weight > 0:
        background = "background included" if loss.dice_form == "released" else "objects only"
        seg += f" + {loss.dice_weight:g} x Dice ({loss.dice_form}: {background})"
    weighted = [f"{getattr(loss, f'{n}_weight'):g} x {n}" for n in ("pcl", "cross_view", "ocl")
                if getattr(loss, f"{n}_weight") > 0]
    lines = [f"loss preset {loss.preset}: {seg}" + (f" + lambda x ({' + '.join(weighted)})" if weighted else "")]
    if weighted:
        log = "-log(softmax + 1e-8)" if loss.correspondence_log == "clipped" else "exact cross-entropy"
        lines.append(f"  correspondence log: {loss.correspondence_log} ({log}); pseudo-label: {loss.pseudo_label}")
    lines.append(f"  schedules stated in {loss.schedule_unit}: ramp {loss.ramp_start:g} -> {loss.ramp_end:g}, "
                 f"bootstrapping {loss.bootstrap_start:g} -> {loss.bootstrap_end:g}")
    for name, stage in stages.items():
        ramp_start, ramp_end, boot_start, boot_end = (
            stage_iteration(loss, v, stage.iterations)
            for v in (loss.ramp_start, loss.ramp_end, loss.bootstrap_start, loss.bootstrap_end))
        ramp = f"lambda 0 until iteration {ramp_start}, 1 from {ramp_end}; " if weighted else ""
        lines.append(f"  {name} ({stage.iterations} iterations): {ramp}CE keeps 100% of pixels until "
                     f"{boot_start}, {loss.bootstrap_top_p:.0%} from {boot_end}; "
                     f"gradient clipping {stage.grad_clip if stage.grad_clip else 'off'}")
        lines.append(f"    {describe_learning_rate(stage)}")
    lines.append(f"  loss-form departures from the release: {', '.join(loss.departures) or 'none'}")
    return lines


def describe_learning_rate(stage: StageConfig) -> str:
    """The stage's learning-rate schedule with its drops resolved to 0-based iterations (`StageConfig.lr_drop_steps`)."""
    groups = " (layer-wise groups 0.2x / 0.4x / 1x)" if stage.layerwise_lr else ""
    stated = f"lr_drop_at {[float(v) if stage.lr_drop_unit == 'fraction' else int(v) for v in stage.lr_drop_at]} " \
             f"in {stage.lr_drop_unit}"
    if stage.lr_schedule == "cosine":
        floor = stage.learning_rate * stage.lr_gamma ** len(stage.lr_drop_at)
        return f"learning rate {stage.learning_rate:g}{groups}, half cosine over the stage down to {floor:g}"
    if not stage.lr_drop_at:
        return f"learning rate {stage.learning_rate:g}{groups}, never dropped"
    steps = stage.lr_drop_steps
    at = f"iteration {steps[0]}" if len(steps) == 1 else f"each of iterations {', '.join(map(str, steps))}"
    return f"learning rate {stage.learning_rate:g}{groups}, x{stage.lr_gamma:g} from {at} ({stated})"
