"""`corrvos probe` end to end with an untrained `small` model: an ingested synthetic dataset (probe J&F and
point correspondence), a DAVIS folder (J&F only), and bad input as one line; the key grid's geometry."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from components.config import ModelConfig, config_from_dict
from components.inference.frames import FrameGeometry
from components.model import STCN
from components.probe import VideoKeys, encode_video
from components.probe.keys import as_key_encoder
from pipelines.cli import main
from tests.evaluation.videos_util import save_small_checkpoint, write_davis


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_small_checkpoint(tmp_path_factory.mktemp("model") / "small.pt")


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> str:
    ingest = pytest.importorskip("components.data.ingest", reason="the data plane is not available")
    from components.data.config import IngestConfig

    uri = str(tmp_path_factory.mktemp("data") / "synthetic")
    ingest.ingest("synthetic", "videos=2,frames=6,size=48,seed=3", uri, IngestConfig(engine="threads"), progress=False)
    return uri


def _probe(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    code = main(["probe", *args, "--no-progress"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_synthetic_dataset_prints_jf_and_correspondence(checkpoint, synthetic, tmp_path, capsys) -> None:
    out = tmp_path / "probe"
    code, stdout, err = _probe(capsys, "--model", str(checkpoint), "--data", synthetic, "--out", str(out),
                               "--set", "probe.frame_gaps=[1,2,4]", "--set", "probe.top_k=5")
    assert code == 0, err
    assert "synthetic-00000" in stdout and "synthetic-00001" in stdout and "global (2 sequences" in stdout
    assert "point correspondence" in stdout and "gap 4" in stdout and "grid ceiling" in stdout
    assert sorted(p.name for p in (out / "predictions").iterdir()) == ["synthetic-00000", "synthetic-00001"]
    assert len(list((out / "predictions" / "synthetic-00000").glob("*.png"))) == 6
    document = json.loads((out / "scores.json").read_text())
    assert document["probe"]["top_k"] == 5 and document["probe"]["frame_gaps"] == [1, 2, 4]
    correspondence = document["correspondence"]
    assert 0.0 <= correspondence["corr_acc@8"] <= 1.0 and correspondence["corr_points"] > 0
    assert set(correspondence) >= {f"corr_acc@{r}/gap{g}" for r in (4, 8, 16) for g in (1, 2, 4)}
    assert 0.0 <= document["global"]["J&F-Mean"] <= 1.0


def test_davis_folder_gives_jf_only(checkpoint, tmp_path, capsys) -> None:
    davis = write_davis(tmp_path / "davis", {"alpha": 4}, objects=2)
    code, stdout, err = _probe(capsys, "--model", str(checkpoint), "--data", str(davis), "--out", str(tmp_path / "o"))
    assert code == 0, err
    assert "alpha" in stdout and "point correspondence: not measured" in stdout
    assert json.loads((tmp_path / "o" / "scores.json").read_text())["correspondence"] is None


@pytest.mark.parametrize("args, message", [
    (["--data", "{missing}"], "missing"),
    (["--set", "probe.top_k=0"], "top_k"),
    (["--set", "probe.nope=1"], "probe.nope"),
    (["--set", "inference.top_k=3"], "probe.*"),
    (["--model", "{missing}"], "missing"),
])
def test_bad_input_is_one_line(checkpoint, synthetic, tmp_path, capsys, args, message) -> None:
    missing = str(tmp_path / "missing")
    base = {"--model": str(checkpoint), "--data": synthetic}
    for flag, value in zip(args[::2], args[1::2]):
        if flag in base:
            base[flag] = value.format(missing=missing)
    extra = [a for pair in zip(args[::2], args[1::2]) if pair[0] not in base for a in pair]
    code, stdout, err = _probe(capsys, "--model", base["--model"], "--data", base["--data"],
                               "--out", str(tmp_path / "o"), *extra)
    assert code == 1
    assert err.startswith("corrvos probe: error:") and err.count("\n") == 1 and message in err


def test_grid_positions_round_trip_through_padding_and_resizing() -> None:
    for geometry in (FrameGeometry.for_size(40, 56, multiple=16), FrameGeometry.for_size(300, 200, 100, multiple=16)):
        h = (geometry.inner_height + geometry.pad[2] + geometry.pad[3]) // 16
        w = (geometry.inner_width + geometry.pad[0] + geometry.pad[1]) // 16
        keys = VideoKeys(torch.zeros(1, 4, h, w), geometry, 16)
        cells = torch.cartesian_prod(torch.arange(h), torch.arange(w)).double()
        assert torch.allclose(keys.pixels_to_grid(keys.grid_to_pixels(cells)), cells)
    keys = VideoKeys(torch.zeros(1, 4, 3, 4), FrameGeometry.for_size(40, 56, multiple=16), 16)
    assert keys.grid_to_pixels(torch.tensor([[0, 0]])).tolist() == [[7.5 - 4, 7.5 - 4]]  # centre of cell 0, less the 4 px pad


def test_a_stride_8_model_is_probed_on_its_own_grid() -> None:
    torch.manual_seed(0)
    model = STCN(config_from_dict(ModelConfig, {"preset": "small", "output_stride": 8}))
    encoder = as_key_encoder(model)
    assert encoder.stride == 8
    keys = encode_video(encoder, [np.zeros((40, 56, 3), np.uint8)] * 2)
    assert keys.keys.shape[-2:] == (5, 7) and keys.stride == 8  # 40 x 56 frames: a multiple of 8, no padding
