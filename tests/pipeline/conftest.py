"""A tiny pipeline config (seconds per stage); the local Ray is `local_ray` (tests/conftest.py)."""

from pathlib import Path

import yaml


def tiny_pipeline_yaml(folder: Path, name: str = "tiny", **sections) -> Path:
    """Write a config: `small` model at 64 px, a few iterations, storage and MLflow under `folder`."""
    stage = {"preset": "demo", "iterations": 4, "batch_size": 2, "checkpoint_every": 2, "log_every": 1,
             "image_every": 2, "cpus_per_worker": 1, "max_failures": 0}
    data = {
        "model": {"preset": "small"},
        "loss": {"preset": "released"},
        "data": {"augment": {"crop_size": 64}, "static_augment": {"crop_size": 64}, "loader": {"num_workers": 1}},
        "pretrain": dict(stage),
        "train": {**stage, "iterations": 6},
        "pipeline": {"name": name, "sources": [
            {"name": "train", "kind": "synthetic", "source": "videos=4,frames=8,size=64,seed=0", "roles": ["pretrain", "train"]},
            {"name": "val", "kind": "synthetic", "source": "videos=2,frames=6,size=64,seed=2000", "roles": ["val"]},
            {"name": "test", "kind": "synthetic", "source": "videos=2,frames=6,size=64,seed=1000", "roles": ["test"]},
        ]},
        "evaluate": {"overlays": 1},
        "tracking": {"mlflow_uri": f"sqlite:///{folder}/mlflow.db", "registered_model": f"corrvos-{name}"},
        "storage": {"root": str(folder / "runs")},
    }
    for key, value in sections.items():
        data[key] = {**data.get(key, {}), **value}
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path
