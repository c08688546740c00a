"""Smoke runs of the CPU benchmarks at toy sizes: they run, and their last line is the ratio they promise."""

from __future__ import annotations

import re

import pytest

from bench import inference, loader_threads, precision, train_step

RATIO = re.compile(r"(\d+\.\d+)x")


def _last_ratio(output: str, label: str) -> float:
    last = output.strip().splitlines()[-1]
    assert last.startswith(label), last
    match = RATIO.search(last)
    assert match, last
    return float(match.group(1))


@pytest.mark.parametrize(("model", "label", "stride"), [("stcn", "engine vs reference loop", "16"),
                                                        ("stcn", "engine vs reference loop", "8"),
                                                        ("xmem", "xmem vs stcn engine", "16")])
def test_inference_bench_ends_with_its_ratio(model: str, label: str, stride: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = inference.main(["--model", model, "--presets", "small", "--size", "64", "--frames", "4", "--rounds", "2",
                           "--output-stride", stride])
    output = capsys.readouterr().out
    assert code == 0
    assert _last_ratio(output, label) > 0
    assert "small (4 frames)" in output
    if model == "stcn":  # same network, same frames: the engine and the reference loop mostly agree
        agreement = float(re.search(r"labels agree on (\d+\.\d)%", output).group(1))
        assert agreement > 50.0


def test_train_step_bench_ends_with_the_correspondence_overhead(capsys: pytest.CaptureFixture[str]) -> None:
    code = train_step.main(["--size", "64", "--batch", "1", "--steps", "2", "--warmup", "1"])
    output = capsys.readouterr().out
    assert code == 0
    assert _last_ratio(output, "correspondence overhead") > 0


def test_loader_threads_bench_compares_its_settings(capsys: pytest.CaptureFixture[str]) -> None:
    code = loader_threads.main(["--threads", "1,0", "--steps", "2", "--warmup", "1", "--batch", "1", "--size", "64"])
    output = capsys.readouterr().out
    assert code == 0
    assert "decode threads 1:" in output and "decode threads 0:" in output
    assert _last_ratio(output, "step time, 1 vs 0 decode threads") > 0


def test_precision_bench_ends_with_both_speed_ups(capsys: pytest.CaptureFixture[str]) -> None:
    code = precision.main(["--size", "64", "--batch", "1", "--steps", "1", "--video-size", "64", "--frames", "3",
                           "--rounds", "1"])
    output = capsys.readouterr().out
    assert code == 0
    last = output.strip().splitlines()[-1]
    assert last.startswith("bf16 vs fp32 speed-up"), last
    assert len(RATIO.findall(last)) == 2
    assert "native bf16:" in output.splitlines()[0]
