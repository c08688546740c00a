"""A registered version serves the settings its J&F was measured with: stored in the checkpoint itself (and
shown as version tags), used by the pyfunc, `corrvos predict` and `corrvos probe` unless a caller overrides
a key; the `register` stage passes evaluate's settings in."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import mlflow.pyfunc
import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from components.config import InferenceConfig, ProbeConfig, config_from_dict, config_to_dict
from components.evaluation.masks import read_label_map
from components.inference import VideoPropagator
from components.model.checkpoint import SCORED_WITH, ScoredSettings, load_inference_checkpoint
from pipelines.cli import main
from pipelines.registry import (
    EVAL_SET_TAG,
    INFERENCE_TAG,
    PROBE_TAG,
    download_model,
    register_model,
    resolve_model,
)
from tests.evaluation.videos_util import moving_squares, write_davis, write_frames, write_mask
from tests.registry.conftest import registered_payload

FRAMES = 8
# off the defaults in ways that change this video's masks (checked below): memory every frame, the previous
# frame as a short-term entry, frames read at 64 px instead of 40
STORED = InferenceConfig(memory_every=1, include_last=True, min_short_side=64)
PROBE = ProbeConfig(context_frames=2, top_k=5, radius=None)
HELD_OUT = "f" * 64


@pytest.fixture
def registered(store, checkpoints, new_run, model_name) -> str:
    """`models:/NAME/1`, registered with STORED / PROBE and a held-out set version."""
    uri, _ = store
    return register_model(uri, model_name, str(checkpoints[0]), new_run(), 0.625, {EVAL_SET_TAG: HELD_OUT},
                          inference=STORED, probe=PROBE).uri


@pytest.fixture(scope="module")
def video() -> tuple[list[np.ndarray], list[np.ndarray]]:
    return moving_squares(FRAMES, objects=2)


def _propagate(checkpoint: Path, config: InferenceConfig, images, first_mask) -> np.ndarray:
    model, _ = load_inference_checkpoint(str(checkpoint))
    return np.stack(VideoPropagator(model, config, "cpu").propagate(images, {0: first_mask}).labels)


def test_settings_round_trip_through_register_and_download(store, registered) -> None:
    uri, _ = store
    resolved = resolve_model(registered, uri)
    assert resolved.settings == ScoredSettings(STORED, PROBE, HELD_OUT, 0.625)
    assert resolved.version_uri == registered and resolved.source == f"registered with {registered}"
    # the file is self-describing: plain dicts in its metadata, nothing else needed to rebuild them
    stored = registered_payload(Path(resolved.checkpoint))["metadata"][SCORED_WITH]
    assert config_from_dict(InferenceConfig, stored["inference"]) == STORED
    assert stored["eval_dataset_version"] == HELD_OUT
    # the tags show the same values in the MLflow UI
    name, version = registered.removeprefix("models:/").split("/")
    tags = MlflowClient(uri, registry_uri=uri).get_model_version(name, version).tags
    assert json.loads(tags[INFERENCE_TAG]) == config_to_dict(STORED) == stored["inference"]
    assert json.loads(tags[PROBE_TAG]) == config_to_dict(PROBE) == stored["probe"]
    assert tags[EVAL_SET_TAG] == HELD_OUT
    # the same weights registered with other settings land in another artifact folder: v1's file never changes
    client = MlflowClient(uri, registry_uri=uri)
    run_id = client.get_model_version(name, version).run_id
    other = register_model(uri, name, str(resolved.checkpoint), run_id, 0.5, {}, inference=InferenceConfig())
    assert client.get_model_version(name, version).source != client.get_model_version(name, str(other.version)).source
    assert resolve_model(registered, uri).settings.inference == STORED
    assert resolve_model(other.uri, uri).settings == ScoredSettings(InferenceConfig(), None, None, 0.5)


def test_a_version_registered_without_settings_serves_the_defaults(store, checkpoints, new_run, model_name) -> None:
    uri, _ = store
    version = register_model(uri, model_name, str(checkpoints[0]), new_run(), 0.5, {})
    assert resolve_model(version.uri, uri).settings == ScoredSettings(jf=0.5)
    tags = MlflowClient(uri, registry_uri=uri).get_model_version(model_name, "1").tags
    assert INFERENCE_TAG not in tags and PROBE_TAG not in tags
    pyfunc = mlflow.pyfunc.load_model(str(download_model(version.uri, uri)))
    defaults = {p.name: p.default for p in pyfunc.metadata.get_params_schema().params}
    assert defaults == {"memory_every": 5, "top_k": 20}  # InferenceConfig()'s, as before settings were stored


def test_the_pyfunc_uses_the_stored_settings_unless_params_override(store, registered, checkpoints, video) -> None:
    uri, _ = store
    images, masks = video
    pyfunc = mlflow.pyfunc.load_model(str(download_model(registered, uri)))
    # MLflow fills an absent param with the signature's default: the stored value, so both agree
    defaults = {p.name: p.default for p in pyfunc.metadata.get_params_schema().params}
    assert defaults == {"memory_every": STORED.memory_every, "top_k": STORED.top_k}
    stored = _propagate(checkpoints[0], STORED, images, masks[0])
    default = _propagate(checkpoints[0], InferenceConfig(), images, masks[0])
    assert not np.array_equal(stored, default)  # the video tells the two settings apart
    model_input = {"frames": np.stack(images), "first_mask": masks[0]}
    assert np.array_equal(pyfunc.predict(model_input), stored)
    assert np.array_equal(pyfunc.predict(model_input, params={"top_k": None}), stored)  # None: the stored value
    # a param overrides that key only; the rest (include_last, min_short_side) stay the stored ones
    override = _propagate(checkpoints[0], dataclasses.replace(STORED, memory_every=5), images, masks[0])
    assert not np.array_equal(override, stored) and not np.array_equal(override, default)
    assert np.array_equal(pyfunc.predict(model_input, params={"memory_every": 5}), override)


def _run(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _predicted(folder: Path) -> np.ndarray:
    return np.stack([read_label_map(p) for p in sorted(folder.iterdir())])


def test_predict_with_a_registered_model_uses_its_settings_and_set_overrides_one_key(
        store, registered, checkpoints, video, tmp_path, capsys) -> None:
    uri, _ = store
    images, masks = video
    paths = write_frames(tmp_path / "clip", images)
    write_mask(tmp_path / "first.png", masks[0])
    from components.evaluation.videos import image_frames  # what predict decodes: JPEG frames read back

    frames = list(image_frames(paths))
    argv = ["predict", "--model", registered, "--tracking-uri", uri, "--frames", str(tmp_path / "clip"),
            "--masks", str(tmp_path / "first.png"), "--no-progress"]
    code, stdout, err = _run(capsys, *argv, "--out", str(tmp_path / "stored"))
    assert code == 0, err
    expected = _propagate(checkpoints[0], STORED, frames, masks[0])
    assert np.array_equal(_predicted(tmp_path / "stored" / "clip"), expected)
    assert (f"inference settings: registered with {registered} "
            "(memory_every=1, include_last=True, min_short_side=64)") in stdout

    code, stdout, err = _run(capsys, *argv, "--out", str(tmp_path / "top4"), "--set", "inference.top_k=4")
    assert code == 0, err
    one_key = dataclasses.replace(STORED, top_k=4)
    assert np.array_equal(_predicted(tmp_path / "top4" / "clip"), _propagate(checkpoints[0], one_key, frames, masks[0]))
    assert (f"inference settings: registered with {registered}, with --set inference.top_k=4 "
            "(memory_every=1, top_k=4, include_last=True, min_short_side=64)") in stdout

    # the downloaded checkpoint is self-describing: as a plain path it serves the same settings
    checkpoint = resolve_model(registered, uri).checkpoint
    code, stdout, err = _run(capsys, *argv[:2], checkpoint, *argv[5:], "--out", str(tmp_path / "path"))
    assert code == 0, err
    assert np.array_equal(_predicted(tmp_path / "path" / "clip"), _predicted(tmp_path / "stored" / "clip"))
    assert f"inference settings: stored in {checkpoint} (memory_every=1" in stdout
    # a checkpoint that was never registered: the defaults, as before
    code, stdout, err = _run(capsys, *argv[:2], str(checkpoints[0]), *argv[5:], "--out", str(tmp_path / "plain"))
    assert code == 0, err
    assert np.array_equal(_predicted(tmp_path / "plain" / "clip"),
                          _propagate(checkpoints[0], InferenceConfig(), frames, masks[0]))
    assert "inference settings: defaults (all default)" in stdout


def test_probe_with_a_registered_model_uses_its_probe_settings(store, registered, tmp_path, capsys) -> None:
    uri, _ = store
    davis = write_davis(tmp_path / "davis", {"alpha": 5})
    argv = ["probe", "--model", registered, "--tracking-uri", uri, "--data", str(davis), "--no-progress"]
    code, stdout, err = _run(capsys, *argv, "--out", str(tmp_path / "stored"))
    assert code == 0, err
    assert json.loads((tmp_path / "stored" / "scores.json").read_text())["probe"] == config_to_dict(PROBE)
    assert f"probe settings: registered with {registered} (context_frames=2, top_k=5, radius=None)" in stdout

    code, stdout, err = _run(capsys, *argv, "--out", str(tmp_path / "top3"), "--set", "probe.top_k=3")
    assert code == 0, err
    document = json.loads((tmp_path / "top3" / "scores.json").read_text())
    assert document["probe"] == config_to_dict(dataclasses.replace(PROBE, top_k=3))
    assert "with --set probe.top_k=3 (context_frames=2, top_k=3, radius=None)" in stdout


def test_the_register_stage_stores_what_evaluate_measured_with(store, checkpoints, new_run, model_name) -> None:
    from components.config import CorrvosConfig
    from pipelines.stages.context import StageContext
    from pipelines.stages.registry import run_register

    uri, _ = store
    config = config_from_dict(CorrvosConfig, {"tracking": {"mlflow_uri": uri, "registered_model": model_name}})
    evaluate = {"jf": "0.5", "scores": "scores.json", "held_out_version": HELD_OUT,
                "inference_config": json.dumps(config_to_dict(STORED)),
                "probe_config": json.dumps(config_to_dict(PROBE))}
    inputs = {"train": {"model": str(checkpoints[0])}, "evaluate": evaluate}
    first = run_register(config, StageContext("unused", inputs, uri, new_run()))
    assert resolve_model(first["model_uri"], uri).settings == ScoredSettings(STORED, PROBE, HELD_OUT, 0.5)
    # an evaluate record from before evaluate reported its settings: this config's (they were what it ran with)
    old = {k: v for k, v in evaluate.items() if not k.endswith("_config")}
    second = run_register(config, StageContext("unused", {**inputs, "evaluate": old}, uri, new_run()))
    fallback = ScoredSettings(config.inference, config.probe, HELD_OUT, 0.5)
    assert resolve_model(second["model_uri"], uri).settings == fallback
