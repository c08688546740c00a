"""`corrvos probe` end to end with an untrained `small` model: an ingested synthetic dataset (probe J&F and
point correspondence), a DAVIS folder (J&F only), and bad input as one line; the key grid's geometry."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from components.config import ModelConfig, config_from_dict
from components.data.config import IngestConfig
from components.data.ingest import ingest
from components.evaluation import EvaluationResult, read_label_map, score_sequence
from components.evaluation.protocol import count_objects
from components.evaluation.videos import open_videos
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
    uri = str(tmp_path_factory.mktemp("data") / "synthetic")
    ingest("synthetic", "videos=2,frames=6,size=48,seed=3", uri, IngestConfig(engine="threads"), progress=False)
    return uri


def rescore(data: str, predictions: Path) -> dict[str, float]:
    """The global line of the written prediction PNGs, scored again against the data's own ground truth."""
    scores = []
    for video in open_videos(data):
        indices = sorted(video.ground_truth)
        gt = [video.ground_truth[i] for i in indices]
        scored = count_objects(gt[0])
        pred = [read_label_map(predictions / video.name / f"{video.frame_names[i]}.png") for i in indices]
        pred = [np.where(p > scored, 0, p) for p in pred]  # a late object's id is not scored (nor an error)
        assert np.array_equal(pred[0], gt[0])  # the given mask is written as given
        scores.append(score_sequence(gt, pred, name=video.name))
    return EvaluationResult(tuple(scores)).global_metrics()


def printed_global(result: dict[str, float]) -> str:
    """The figures of the printed global line, formatted as the table prints them."""
    return (f"J&F-Mean {result['J&F-Mean']:.3f} | J-Mean {result['J-Mean']:.3f} J-Recall {result['J-Recall']:.3f} "
            f"J-Decay {result['J-Decay']:.3f} | F-Mean {result['F-Mean']:.3f}")


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
    assert correspondence["corr_points"] > 0
    assert set(correspondence) >= {f"corr_acc@{r}/gap{g}" for r in (4, 8, 16) for g in (1, 2, 4)}
    for r in (4, 8, 16):
        per_gap = [correspondence[f"corr_acc@{r}/gap{g}"] for g in (1, 2, 4)]
        assert correspondence[f"corr_acc@{r}"] == pytest.approx(np.mean(per_gap), rel=0, abs=1e-12)  # mean over gaps
        assert correspondence[f"corr_acc@{r}"] <= correspondence[f"corr_ceiling@{r}"]  # no keys beat the grid
        assert f"{correspondence[f'corr_acc@{r}']:.3f}" in stdout.split("corr_acc (mean)")[1].splitlines()[0]
    # the grid's own limit, known without the model: a stride-16 cell centre is at most 11.3 px from any point
    assert correspondence["corr_ceiling@16"] == 1.0
    # probe J&F: the numbers in scores.json are the written predictions', and the printed line is the file's
    assert document["global"] == pytest.approx(rescore(synthetic, out / "predictions"), rel=0, abs=1e-12)
    assert printed_global(document["global"]) in stdout


def test_davis_folder_gives_jf_only(checkpoint, tmp_path, capsys) -> None:
    davis = write_davis(tmp_path / "davis", {"alpha": 4}, objects=2)
    code, stdout, err = _probe(capsys, "--model", str(checkpoint), "--data", str(davis), "--out", str(tmp_path / "o"))
    assert code == 0, err
    assert "alpha" in stdout and "point correspondence: not measured" in stdout
    document = json.loads((tmp_path / "o" / "scores.json").read_text())
    assert document["correspondence"] is None
    assert [o["id"] for o in document["sequences"]["alpha"]["objects"]] == [1, 2]
    assert document["global"] == pytest.approx(rescore(str(davis), tmp_path / "o" / "predictions"), rel=0, abs=1e-12)
    assert printed_global(document["global"]) in stdout


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
