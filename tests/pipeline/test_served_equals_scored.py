"""The registry serves what it scored: predicting the `evaluate` stage's held-out videos through
`corrvos predict --model models:/NAME@champion` and scoring them with `corrvos score` reproduces, exactly,
the J&F the pipeline logged on that version (tag corrvos.jf) — with inference settings off the defaults,
so a served model that fell back to the defaults would score differently."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import torch
from mlflow.tracking import MlflowClient
from PIL import Image

from components.config import CorrvosConfig, InferenceConfig, load_yaml_config
from components.evaluation.evaluate import evaluate_videos
from components.evaluation.predictions import write_label_png
from components.evaluation.protocol import count_objects
from components.evaluation.videos import EvalVideo, dataset_videos, read_image
from components.inference.frames import resample
from components.model.checkpoint import load_inference_checkpoint
from pipelines.cli import main
from pipelines.registry import EVAL_SET_TAG, INFERENCE_TAG, JF_TAG
from pipelines.training.stage import dataset_version

# memory every frame with the previous frame as a short-term entry, 64 px videos read at 96 px
SCORED_WITH = {"memory_every": 1, "include_last": True, "min_short_side": 96}


def test_frame_resampling_gives_the_same_values_on_any_thread_count() -> None:
    """Evaluate runs in a 1-CPU Ray task (one torch thread); predict runs on every core. Under bf16 an
    ulp of difference in a resized frame changes masks, so the resize must not depend on the thread count."""
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    before = torch.get_num_threads()
    try:
        outputs = []
        for threads in (1, 2, 3):
            torch.set_num_threads(threads)
            outputs.append(resample(x, (96, 96)))
    finally:
        torch.set_num_threads(before)
    assert all(torch.equal(outputs[0], other) for other in outputs[1:]), \
        "components.inference.frames.resample gives other values on another thread count"


def assert_champion_served_reproduces_logged_jf(path: Path, summary: dict, tmp_path: Path, capsys) -> None:
    """Predict the primary test set through `models:/NAME@champion` and score it: exactly the logged J&F.

    Called by tests/pipeline/test_pipeline.py on its pipeline run (configured with SCORED_WITH), so the
    check costs no pipeline of its own.
    """
    config = load_yaml_config(CorrvosConfig, path)
    tracking_uri, name = config.tracking.mlflow_uri, config.registered_model
    champion = MlflowClient(tracking_uri, registry_uri=tracking_uri).get_model_version_by_alias(name, "champion")
    logged = float(champion.tags[JF_TAG])
    evaluate = summary["stages"]["evaluate"]["outputs"]
    # the version carries the settings evaluate measured with (the tag shows what the checkpoint holds)
    measured_with = json.loads(evaluate["inference_config"])
    assert json.loads(champion.tags[INFERENCE_TAG]) == measured_with
    assert {k: measured_with[k] for k in SCORED_WITH} == SCORED_WITH
    assert measured_with["precision"] in ("bf16", "fp32")  # `auto` as resolved where it was scored

    # the videos the evaluate stage scored, decoded as it decoded them, exported losslessly
    uris = _scored_datasets(config, summary["stages"]["ingest"]["outputs"], evaluate, champion.tags[EVAL_SET_TAG])
    videos = list(_held_out(config, uris))
    assert len(videos) == 2
    export = tmp_path / "export"
    for video in videos:
        _export(video, export)

    capsys.readouterr()
    for video in videos:
        masks = export / "masks" / video.name
        code = main(["predict", "--model", f"models:/{name}@champion", "--tracking-uri", tracking_uri,
                     "--frames", str(export / "frames" / video.name), "--masks", str(masks),
                     "--out", str(tmp_path / "served"), "--no-progress"])
        assert code == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert f"inference settings: registered with models:/{name}/{champion.version} " \
           "(memory_every=1, include_last=True, min_short_side=96" in printed
    assert main(["score", str(export / "gt"), str(tmp_path / "served"), "--json", str(tmp_path / "served.json"),
                 "--no-progress"]) == 0
    served = json.loads((tmp_path / "served.json").read_text())["global"]["J&F-Mean"]
    assert served == logged == float(evaluate["jf"])  # exactly: the same frames, settings and arithmetic

    # not by luck: the same model served with the defaults scores differently on these videos
    model, _ = load_inference_checkpoint(summary["stages"]["train"]["outputs"]["model"])
    defaults = evaluate_videos(model, videos, tmp_path / "served-defaults", InferenceConfig(), "cpu", progress=False,
                               reports=False)
    assert defaults.jf_mean != logged


def _scored_datasets(config: CorrvosConfig, ingested: dict[str, str], evaluate: dict[str, str],
                     held_out: str) -> list[str]:
    """The datasets whose J&F was registered: evaluate's primary test set (role `test`), checked against the
    held-out version the version was tagged with."""
    uris = [ingested[evaluate["primary_test_set"]]]
    assert dataset_version(uris, config.storage.options) == held_out.split("/first-")[0]
    return uris


def _held_out(config: CorrvosConfig, uris: list[str]):
    videos = itertools.chain.from_iterable(dataset_videos(u, storage_options=config.storage.options) for u in uris)
    return itertools.islice(videos, config.evaluate.max_videos)  # None: all, as evaluate takes them


def _export(video: EvalVideo, root: Path) -> None:
    """frames/<seq>/<frame>.png (lossless), masks/<seq>/ (the masks evaluate gave the method), gt/<seq>/."""
    for sub in ("frames", "masks", "gt"):
        (root / sub / video.name).mkdir(parents=True)
    for index, name in enumerate(video.frame_names):
        frame = video.frames[index]
        target = root / "frames" / video.name / f"{name}.png"
        Image.fromarray(frame).save(target)
        assert np.array_equal(read_image(target), frame)  # predict reads exactly what evaluate propagated
    for index, labels in video.annotations.items():
        write_label_png(root / "masks" / video.name / f"{video.frame_names[index]}.png", labels)
    for index, labels in video.ground_truth.items():
        write_label_png(root / "gt" / video.name / f"{video.frame_names[index]}.png", labels)
    # `corrvos score` scores the objects of the first ground-truth frame and rejects others, as evaluate ignores them
    first = video.ground_truth[min(video.ground_truth)]
    assert all(count_objects(labels) <= count_objects(first) for labels in video.annotations.values())
