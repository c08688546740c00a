"""Ray in the data plane: ingestion on Ray tasks, and the loader inside real Ray Train workers.

The session's shared local Ray (`local_ray`, tests/conftest.py) runs them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from components.config import config_from_dict
from components.data.config import DataConfig, IngestConfig
from components.data.ingest import ingest
from components.data.loader import ClipLoader
from components.errors import DataError
from tests.data.conftest import break_video, leftovers

SECTIONS = {"augment": {"crop_size": 32}, "loader": {"num_workers": 1}}


def test_ingest_on_ray_matches_threads(davis16: Path, tmp_path: Path, local_ray) -> None:
    by_threads = ingest("davis", str(davis16), str(tmp_path / "t"), IngestConfig(engine="threads"), progress=False)
    by_ray = ingest("davis", str(davis16), str(tmp_path / "r"), IngestConfig(engine="ray"), progress=False)
    assert by_ray.content_hash == by_threads.content_hash and by_ray.counts == by_threads.counts


def test_ray_ingest_failure_names_the_file(davis16: Path, tmp_path: Path, local_ray) -> None:
    named = break_video("truncated", davis16)
    with pytest.raises(DataError, match=named):
        ingest("davis", str(davis16), str(tmp_path / "r"), IngestConfig(engine="ray"), progress=False)
    assert leftovers(tmp_path / "r") == []


def _train_loop(config: dict) -> None:
    import ray.train

    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    data = config_from_dict(DataConfig, SECTIONS)
    with ClipLoader(config["uri"], 2, rank=rank, world_size=world, seed=9, config=data) as loader:
        sums = [float(batch.frames.sum()) for batch in loader.iterate(total_steps=2)]
        share = sorted(name for _, name in loader.items)
    with open(os.path.join(config["out"], f"rank{rank}.json"), "w") as f:
        json.dump({"share": share, "sums": sums}, f)
    ray.train.report({"rank": rank})


@pytest.mark.slow
def test_two_ray_train_workers_read_disjoint_shares_reproducibly(tmp_path: Path, local_ray) -> None:
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    uri = str(tmp_path / "synthetic")
    ingest("synthetic", "videos=6,frames=8,size=32,seed=1", uri, IngestConfig(engine="threads"), progress=False)
    out = tmp_path / "ranks"
    out.mkdir()
    trainer = TorchTrainer(
        _train_loop,
        train_loop_config={"uri": uri, "out": str(out)},
        scaling_config=ScalingConfig(num_workers=2, use_gpu=False),
        run_config=RunConfig(storage_path=str(tmp_path / "ray"), name="loader"),
    )
    trainer.fit()
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in range(2)]
    assert not set(ranks[0]["share"]) & set(ranks[1]["share"])
    assert len(ranks[0]["share"]) + len(ranks[1]["share"]) == 6
    for rank, seen in enumerate(ranks):  # the same batches as this process makes for that rank
        with ClipLoader(uri, 2, rank=rank, world_size=2, seed=9, config=config_from_dict(DataConfig, SECTIONS)) as loader:
            assert [float(b.frames.sum()) for b in loader.iterate(total_steps=2)] == seen["sums"]
