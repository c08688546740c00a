"""`corrvos predict --model models:/NAME@champion` and `corrvos promote --version N` against a SQLite store."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from components.evaluation.masks import read_label_map
from pipelines.cli import main
from pipelines.registry import promote, register_model
from tests.evaluation.videos_util import moving_squares, write_frames, write_mask

FRAMES = 5


def _run(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_predict_with_the_champion_writes_pngs(store, checkpoints, new_run, model_name, tmp_path, capsys) -> None:
    uri, _ = store
    register_model(uri, model_name, str(checkpoints[0]), new_run(), 0.5, {})
    promote(uri, model_name, 1, 0.0)
    images, masks = moving_squares(FRAMES)
    write_frames(tmp_path / "clip", images)
    write_mask(tmp_path / "first.png", masks[0])
    code, stdout, err = _run(capsys, "predict", "--model", f"models:/{model_name}@champion", "--tracking-uri", uri,
                             "--frames", str(tmp_path / "clip"), "--masks", str(tmp_path / "first.png"),
                             "--out", str(tmp_path / "out"), "--no-progress")
    assert code == 0, err
    pngs = sorted((tmp_path / "out" / "clip").iterdir())
    assert [p.name for p in pngs] == [f"{t:05d}.png" for t in range(FRAMES)]
    assert np.array_equal(read_label_map(pngs[0]), masks[0]) and "wrote 5 frames" in stdout


def test_predict_with_an_unknown_alias_is_one_line_and_writes_nothing(store, tmp_path, capsys, monkeypatch) -> None:
    uri, _ = store
    images, masks = moving_squares(2)
    write_frames(tmp_path / "clip", images)
    write_mask(tmp_path / "first.png", masks[0])
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)  # the default when --tracking-uri is not given
    code, _, err = _run(capsys, "predict", "--model", "models:/never-registered@champion", "--frames",
                        str(tmp_path / "clip"), "--masks", str(tmp_path / "first.png"), "--out", str(tmp_path / "out"))
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1 and "'never-registered' has no alias 'champion'" in lines[0], err
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_promote_by_hand_from_the_command_line(store, checkpoints, new_run, model_name, tmp_path, capsys) -> None:
    uri, _ = store
    run_id = new_run()
    register_model(uri, model_name, str(checkpoints[0]), run_id, 0.7, {})
    register_model(uri, model_name, str(checkpoints[1]), run_id, 0.2, {})
    promote(uri, model_name, 1, 0.0)
    config = tmp_path / "config.yaml"
    config.write_text(f"tracking:\n  mlflow_uri: {uri}\n  registered_model: {model_name}\n")
    code, stdout, err = _run(capsys, "promote", "--version", "2", "--config", str(config))
    assert code == 0, err
    assert f"{model_name} v2 (J&F 0.2000) is now champion (by hand); champion before: v1 (J&F 0.7000)" in stdout
    assert MlflowClient(uri, registry_uri=uri).get_registered_model(model_name).aliases == {"champion": 2}
    # flags win over the config; an unknown version is one line
    code, _, err = _run(capsys, "promote", "--version", "5", "--name", model_name, "--tracking-uri", uri)
    assert code == 1 and err.strip() == f"corrvos promote: error: registered model '{model_name}' has no version 5"


def test_promote_with_an_unknown_config_key_is_one_line(tmp_path: Path, capsys) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("tracking:\n  registered_modle: x\n")
    code, _, err = _run(capsys, "promote", "--version", "1", "--config", str(config))
    assert code == 1 and len(err.strip().splitlines()) == 1 and "registered_modle" in err
