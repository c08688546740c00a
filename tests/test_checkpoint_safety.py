"""Every checkpoint corrvos reads loads with `weights_only=True`: a planted pickle payload is refused, never run.

Whoever can write to the storage root or a shared bucket can plant a file; loading it must not
execute their code. One test per kind of file corrvos reads: inference checkpoint, backbone
(imported) weights, training state; plus the CLI path a user takes (`corrvos predict --model`).
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
import torch

from components.config import ModelConfig, config_to_dict
from components.errors import CorrvosError
from components.model.checkpoint import FORMAT, load_inference_checkpoint, read_checkpoint_metadata
from components.model.weights import read_state_dict
from components.training.state import TrainingState
from pipelines.cli import main

SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "davis2016-sample-480p"


class _Payload:
    """Unpickling this creates `marker`: proof that code from the file ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.makedirs, (str(self.marker),))


def _planted(path: Path, marker: Path, wrap) -> Path:
    buffer = io.BytesIO()
    torch.save(wrap(_Payload(marker)), buffer)
    path.write_bytes(buffer.getvalue())
    return path


def _inference_wrapper(payload: object) -> dict:
    return {"format": FORMAT, "model_config": config_to_dict(ModelConfig()), "state_dict": {}, "metadata": payload}


@pytest.mark.parametrize("reader", [load_inference_checkpoint, read_checkpoint_metadata], ids=["load", "metadata"])
def test_inference_checkpoint_with_code_is_refused_unrun(tmp_path: Path, reader) -> None:
    marker = tmp_path / "pwned"
    path = _planted(tmp_path / "model.pt", marker, _inference_wrapper)
    with pytest.raises(CorrvosError) as info:
        reader(str(path))
    message = str(info.value)
    assert str(path) in message and "\n" not in message
    assert "unpickl" in message
    assert not marker.exists()


def test_backbone_weights_with_code_are_refused_unrun(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = _planted(tmp_path / "resnet50.pth", marker, lambda p: {"conv1.weight": torch.zeros(1), "x": p})
    with pytest.raises(CorrvosError) as info:
        read_state_dict(str(path))
    assert str(path) in str(info.value) and "\n" not in str(info.value)
    assert not marker.exists()


def test_training_state_with_code_is_refused_unrun(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    buffer = io.BytesIO()
    torch.save({"format": "corrvos-training/2", "step": 3, "extra": _Payload(marker)}, buffer)
    with pytest.raises(ValueError, match="never unpickled"):
        TrainingState.from_bytes(buffer.getvalue())
    assert not marker.exists()


@pytest.mark.skipif(not SAMPLE.is_dir(), reason="shared DAVIS sample not present")
def test_predict_refuses_a_planted_checkpoint_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    marker = tmp_path / "pwned"
    path = _planted(tmp_path / "model.pt", marker, _inference_wrapper)
    code = main(["predict", "--model", str(path), "--frames", str(SAMPLE / "JPEGImages" / "bear"),
                 "--masks", str(SAMPLE / "Annotations" / "bear" / "00000.png"), "--out", str(tmp_path / "out"),
                 "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1 and str(path) in err
    assert not marker.exists() and not (tmp_path / "out").exists()


def test_checkpoint_whose_weights_do_not_fit_names_what_is_missing(tmp_path: Path) -> None:
    path = tmp_path / "empty.pt"
    torch.save(_inference_wrapper({}) | {"metadata": {}}, path)
    with pytest.raises(CorrvosError) as info:
        load_inference_checkpoint(str(path))
    message = str(info.value)
    assert "\n" not in message and "missing" in message and "key_encoder." in message
