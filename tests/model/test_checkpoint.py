"""Inference checkpoints: round trip through local and fsspec storage, clear errors, no head g."""

import pytest
import torch

from components.errors import CorrvosError
from components.model import STCNTrainWrapper
from components.model.checkpoint import load_inference_checkpoint, save_inference_checkpoint


def test_round_trip_gives_the_same_network(tmp_path, small_config):
    wrapper = STCNTrainWrapper(small_config)
    for uri in (str(tmp_path / "a" / "model.pt"), "memory://ckpt/model.pt"):
        save_inference_checkpoint(uri, wrapper.inference_state_dict(), small_config, {"step": 7})
        model, metadata = load_inference_checkpoint(uri)
        assert metadata == {"step": 7}
        assert not model.training
        frames = torch.rand(1, 3, 32, 32)
        with torch.no_grad():
            assert torch.equal(model.encode_key(frames).key, wrapper.eval().encode_key(frames).key)
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["model.pt"]  # no temporary left behind


def test_head_g_is_refused(tmp_path, small_config):
    wrapper = STCNTrainWrapper(small_config)
    with pytest.raises(ValueError, match="head g"):
        save_inference_checkpoint(str(tmp_path / "m.pt"), wrapper.state_dict(), small_config)


def test_missing_and_foreign_files_are_one_line_errors(tmp_path):
    with pytest.raises(CorrvosError, match="not found"):
        load_inference_checkpoint(str(tmp_path / "absent.pt"))
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CorrvosError, match="junk.pt"):
        load_inference_checkpoint(str(tmp_path / "junk.pt"))
    torch.save({"some": "dict"}, tmp_path / "other.pt")
    with pytest.raises(CorrvosError, match="not a corrvos inference checkpoint"):
        load_inference_checkpoint(str(tmp_path / "other.pt"))
